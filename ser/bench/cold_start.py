"""Part (h) of ``python -m ser.bench ckpt=RUN``: how long a user waits for ``ser.predict``.

Cold start is the wall time of a fresh ``python -m ser.predict ckpt=... audio=one.wav``
process, from launch to exit after printing the table of a 2-s recording: interpreter,
imports, model loading, decoding and the network. It is measured for the checkpoint and for
its ONNX export (written to a temporary folder as ``python -m ser.export`` does), as the
median of ``runs`` processes, each after the previous one ended (the OS file cache is warm,
as it is for a user running the command twice).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ser.errors import SerError


def cold_start_seconds(model: str | Path, audio: Path, runs: int = 5) -> list[float]:
    """Wall seconds of ``runs`` fresh ``ser.predict`` processes, in order."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ser.predict", f"ckpt={model}", f"audio={audio}"],
                              env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SerError(f"python -m ser.predict ckpt={model} failed: {done.stderr.strip()[-600:]}")
    return times


def cold_start_figures(ckpt: str | Path, speech: np.ndarray, sample_rate: int, runs: int = 5) -> list[str]:
    """The (h) lines: median (min-max) cold start of ONNX and checkpoint on 2 s of ``speech``."""
    import soundfile as sf

    from ser.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="ser-bench-cold-") as tmp:
        wav = Path(tmp) / "two_seconds.wav"
        sf.write(wav, np.resize(speech.astype(np.float32), 2 * sample_rate), sample_rate, subtype="PCM_16")
        onnx = Path(tmp) / "model.onnx"
        export_onnx(ckpt, onnx)
        lines = []
        for kind, model in (("ONNX", onnx), ("checkpoint", ckpt)):
            t = cold_start_seconds(model, wav, runs)
            lines.append(f"(h) cold start of python -m ser.predict on a 2-s recording, {kind}: median "
                         f"{statistics.median(t):.2f} s of {runs} fresh processes "
                         f"(min {min(t):.2f}, max {max(t):.2f} s; load average {os.getloadavg()[0]:.2f})")
    return lines
