"""One interface for every kind of trained model: (N, samples) waveform blocks -> (N, C) probabilities.

The timeline and the live listener only need the classes, the sample rate, the block length the
network was trained on and a ``predict_blocks``; hiding whether that is a Lightning checkpoint
or an exported ONNX file lets both run from either (``ckpt=RUN`` or ``ckpt=model.onnx``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ser.errors import SerError


@runtime_checkable
class Predictor(Protocol):
    """What a classifier of waveform blocks offers (ONNX's ``OnnxPredictor`` has the same)."""

    classes: list[str]
    sample_rate: int            # Hz the blocks must be at
    block_seconds: float        # the block length the network was trained on
    pad_min_fraction: float | None
    # the model's own abstention threshold (chosen on its validation part; None: never unsure),
    # what ``min_confidence=model``, the default of every command, applies
    min_confidence: float | None

    def predict_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """(N, samples) float32 clean waveform -> (N, C) float32 probabilities (rows sum to 1)."""
        ...


def load_predictor(path: str | Path) -> Predictor:
    """A predictor for a ``.ckpt`` file, a run directory (its best checkpoint) or a ``.onnx`` file.

    Neither kind imports pytorch_lightning or Hydra (a checkpoint imports torch; an ONNX file
    only onnxruntime), so ``ser.predict``, ``ser.listen`` and ``ser.serve`` start quickly."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SerError(f"Model not found: {path}. Pass ckpt= a run directory written by train.py, "
                       "a .ckpt file (run/checkpoints/last.ckpt or best-*.ckpt) or an exported "
                       ".onnx file.")
    if path.suffix.lower() == ".onnx":
        try:  # the ONNX runtime is an optional dependency: import it only when asked for
            from ser.inference.onnx_predictor import OnnxPredictor
        except ImportError as exc:
            raise SerError(f"{path} is an ONNX model, but ONNX inference is not available here "
                           f"({type(exc).__name__}: {exc}). Install onnxruntime, or pass the run "
                           "directory or .ckpt the model was exported from.") from exc
        return OnnxPredictor(path)
    # front-end + network rebuilt without Lightning (seconds of imports saved at every start)
    from ser.inference.checkpoint_predictor import load_checkpoint_predictor

    return load_checkpoint_predictor(path)


def model_file(predictor: Predictor) -> Path | None:
    """The file the predictor was loaded from (where default outputs go), when known."""
    found = getattr(predictor, "path", None)
    return Path(found) if found is not None else None


def warm_up(predictor: Predictor, window_samples: int | None = None, times: int = 2) -> None:
    """Run the network on silence first, so one-off costs (allocator growth, kernel selection,
    lazy imports, numba compilation in some front-ends) never land on the first real window."""
    samples = window_samples or int(round(predictor.block_seconds * predictor.sample_rate))
    for _ in range(times):
        predictor.predict_blocks(np.zeros((1, samples), np.float32))
