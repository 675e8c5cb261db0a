"""Classifying audio with a trained model: one predictor behind checkpoints (rebuilt without
Lightning) and ONNX files, recordings cut into blocks and classified (``ser.predict``,
``evaluate.py ckpt=RUN audio=...``), sliding windows and per-recording timelines, and live
streams (:mod:`ser.inference.live` for ``ser.listen``; ``ser.serve``). Evaluation and export
use it; it uses neither."""

from ser.inference.predictor import Predictor, load_predictor, warm_up

__all__ = ["Predictor", "load_predictor", "warm_up"]
