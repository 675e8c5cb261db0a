"""What every part of ``python -m ser.bench`` shares: blocks of speech, timers, resource use."""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ser.errors import SerError


# ------------------------------------------------------------------------------ inputs
def speech_blocks(folder: Path | None, n: int, sample_rate: int, seed: int = 0
                  ) -> tuple[np.ndarray, str]:
    """``n`` 1-s blocks (n, sample_rate) float32 and a description of where they come from."""
    from ser.audio.io import list_audio_files, load_audio

    blocks: list[np.ndarray] = []
    if folder is not None:
        files = list_audio_files(folder)
        if not files:
            raise SerError(f"speech={folder} holds no audio files; give a folder of speech "
                           "recordings (wav/flac/ogg), or leave speech= out to use generated "
                           "speech.")
        order = np.random.default_rng(seed).permutation(len(files))
        used = 0
        for index in order:
            audio = load_audio(files[index], sample_rate)
            used += 1
            blocks += _cut(audio, sample_rate)
            if len(blocks) >= n:
                break
        source = f"real speech from {folder} ({used} files)"
    else:
        import tempfile

        from ser.data.demo import build_demo_corpus

        with tempfile.TemporaryDirectory() as tmp:
            per_class = max(1, min(n, 64) // 8)
            table = build_demo_corpus(tmp, seed=seed, n_speakers=2, utterances_per_class=per_class,
                                      sample_rate=sample_rate)
            for utterance in table.utterances:
                audio = load_audio(utterance.path, sample_rate)
                blocks += _cut(audio, sample_rate)
        source = "generated speech-like audio (the demo synthesiser; no speech= folder)"
    if not blocks:
        raise SerError("No 1-s block could be cut from the speech recordings; they are all shorter "
                       "than a second. Give a folder with longer recordings via speech=DIR.")
    unique = len(blocks)
    stacked = np.stack(blocks[:n]).astype(np.float32)
    if unique < n:  # too little audio: repeat it (timing does not depend on content)
        stacked = np.resize(stacked, (n, sample_rate)).astype(np.float32)
        source += f", {unique} distinct blocks repeated"
    return stacked, source


def _cut(audio: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """Non-overlapping 1-s blocks of ``audio``, cut as training cuts them (remainder dropped)."""
    from ser.data.blocks import cut_blocks

    return list(cut_blocks(audio, sample_rate))


# ---------------------------------------------------------------------------- timing
def median_seconds(run: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None
                   ) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``repeats`` calls of
    ``run``, after one untimed warm-up call. CPU time shows the work done even when other jobs
    share the cores and stretch the wall time."""
    run()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


def sync_of(device: torch.device) -> Callable[[], None]:
    """What makes a timer wait for the device's queued work (nothing on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


@dataclass
class Usage:
    """Process CPU time and minor page faults over a stretch of the benchmark: the share of
    system time and the faults show whether the kernel, not the model, is doing the work."""

    user_s: float
    system_s: float
    minor_faults: int

    def __sub__(self, earlier: "Usage") -> "Usage":
        return Usage(self.user_s - earlier.user_s, self.system_s - earlier.system_s,
                     self.minor_faults - earlier.minor_faults)

    def __str__(self) -> str:
        share = 100 * self.system_s / self.user_s if self.user_s else 0.0
        return (f"user {self.user_s:.1f} s, system {self.system_s:.1f} s ({share:.1f} % of user), "
                f"{self.minor_faults / 1e6:.2f} M minor page faults")


def usage_now() -> Usage:
    """CPU times and minor faults of this process so far; subtract two to get a stretch's."""
    now = resource.getrusage(resource.RUSAGE_SELF)
    return Usage(now.ru_utime, now.ru_stime, now.ru_minflt)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
