"""Classifying audio as it goes: a predictor behind checkpoints and ONNX files, sliding windows,
per-recording timelines (``evaluate.py ckpt=RUN audio=...``) and live streams (``ser.listen``)."""

from ser.inference.predictor import Predictor, load_predictor, warm_up

__all__ = ["Predictor", "load_predictor", "warm_up"]
