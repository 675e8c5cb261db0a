"""Run an exported classifier with onnxruntime alone: blocks (N, samples) -> (N, C).

What ``evaluate.py audio=`` and ``python -m ser.listen`` use for a ``.onnx`` model written by
``python -m ser.export``: it needs neither torch nor the checkpoint, only the graph and the
settings in its metadata_props.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from ser.errors import SerError


def require_onnx(names: tuple[str, ...] = ("onnx", "onnxruntime")) -> None:
    """A SerError (one paragraph) when one of ``names`` (onnx, onnxruntime) is not installed.

    find_spec, not import: onnx alone takes most of a second to import, and running a model
    (:class:`OnnxPredictor`) never needs it."""
    def absent(name: str) -> bool:
        if name in sys.modules:  # imported already, or blocked (None) as Python's -X / tests do
            return sys.modules[name] is None
        return importlib.util.find_spec(name) is None

    missing = [name for name in names if absent(name)]
    if missing:
        raise SerError(f"Exporting and running ONNX models needs {' and '.join(missing)}, which "
                       "is not installed here. Install the export extra: pip install -e '.[export]' "
                       "(or pip install onnx onnxruntime onnxscript).")


class OnnxPredictor:
    """An ONNX model written by ``python -m ser.export``, on onnxruntime's CPU provider.

    ``classes`` (list of names, the output order), ``sample_rate`` (Hz), ``block_seconds`` (s)
    and ``pad_min_fraction`` (None: a short tail is dropped) come from the metadata.
    """

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        require_onnx(("onnxruntime",))
        import onnxruntime as ort

        path = Path(path).expanduser()
        if not path.is_file():
            raise SerError(f"No ONNX model at {path}: write one with python -m ser.export "
                           "ckpt=RUN out=model.onnx.")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise SerError(f"onnxruntime cannot load {path} ({str(exc).splitlines()[0]}); "
                           "export the checkpoint again with python -m ser.export.") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("classes", "sample_rate", "block_seconds") if k not in meta]
        if missing:
            raise SerError(f"{path} lacks {missing} in its metadata: it was not written by "
                           "python -m ser.export. Export the checkpoint again.")
        self.path = path
        self.classes: list[str] = list(json.loads(meta["classes"]))
        self.sample_rate: int = int(meta["sample_rate"])
        self.block_seconds: float = float(meta["block_seconds"])
        pad = json.loads(meta.get("pad_min_fraction", "null"))
        self.pad_min_fraction: float | None = None if pad is None else float(pad)
        self.block_samples = int(round(self.block_seconds * self.sample_rate))
        threshold = json.loads(meta.get("min_confidence", "null"))  # files exported before it: none
        self.min_confidence: float | None = None if threshold is None else float(threshold)

    def predict_blocks(self, blocks: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, samples) float32 clean blocks -> (N, C) float32 probabilities; N = 0 -> (0, C)."""
        x = np.ascontiguousarray(np.asarray(blocks, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.block_samples:
            raise SerError(f"Expected blocks of shape (N, {self.block_samples}) "
                           f"({self.block_seconds:g} s at {self.sample_rate} Hz), got {x.shape}.")
        out = [self.session.run(["probabilities"], {"blocks": x[i:i + batch_size]})[0]
               for i in range(0, x.shape[0], batch_size)]
        if not out:
            return np.empty((0, len(self.classes)), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def onnx_blocks_per_second(path: str | Path, blocks: np.ndarray, repeats: int = 3) -> float:
    """Blocks classified per second by onnxruntime (best of ``repeats`` after one warm-up)."""
    predictor = OnnxPredictor(path)
    predictor.predict_blocks(blocks[:1])
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        predictor.predict_blocks(blocks)
        best = min(best, time.perf_counter() - start)
    return len(blocks) / best if best > 0 else float("inf")
