"""Part (f) of ``python -m ser.bench ckpt=RUN``: a trained model's blocks/s, PyTorch against onnxruntime.

The checkpoint (or run directory) is exported to a temporary ``.onnx`` file as
``python -m ser.export`` does, and both classify the same clean blocks: PyTorch through the
checkpoint's own ``predict_blocks`` (front-end and network), onnxruntime through the exported
graph (the front-end inside it). Also printed: the largest probability difference between them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _blocks_per_second(predict, blocks: np.ndarray, repeats: int) -> float:
    predict(blocks[:1])  # warm-up: first calls load kernels
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        predict(blocks)
        best = min(best, time.perf_counter() - start)
    return len(blocks) / best


def onnx_figures(ckpt: str | Path, blocks: np.ndarray, repeats: int) -> str:
    """The (f) line for ``blocks`` (n, samples) float32 at the checkpoint's rate."""
    from ser.export import export_onnx
    from ser.inference.onnx_predictor import OnnxPredictor
    from ser.inference.predictor import load_predictor

    torch_model = load_predictor(ckpt)
    samples = int(round(torch_model.block_seconds * torch_model.sample_rate))
    blocks = np.ascontiguousarray(np.resize(blocks, (len(blocks), samples)), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="ser-bench-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(ckpt, path)
        runtime = OnnxPredictor(path)
        torch_rate = _blocks_per_second(torch_model.predict_blocks, blocks, repeats)
        onnx_rate = _blocks_per_second(runtime.predict_blocks, blocks, repeats)
        gap = float(np.abs(np.asarray(runtime.predict_blocks(blocks))
                           - np.asarray(torch_model.predict_blocks(blocks))).max())
    return (f"(f) trained model {Path(ckpt).name}, CPU, {len(blocks)} clean blocks: PyTorch "
            f"{torch_rate:.1f} blocks/s, onnxruntime {onnx_rate:.1f} blocks/s "
            f"({onnx_rate / torch_rate:.2f}x); largest probability difference {gap:.2e}")
