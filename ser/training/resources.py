"""Memory per epoch, so a long sweep shows whether a run grows (it must not)."""

from __future__ import annotations

import os
import resource
import sys

import pytorch_lightning as pl
import torch


def current_rss_mb() -> float:
    """Resident memory of this process now (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class MemoryMonitor(pl.Callback):
    """Records resident and peak memory (and GPU peak) at the end of every training epoch."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = {"epoch": int(trainer.current_epoch), "rss_mb": round(current_rss_mb(), 1),
               "peak_rss_mb": round(peak_rss_mb(), 1)}
        if torch.cuda.is_available():
            row["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        self.epochs.append(row)
        # each process reports its own memory: no cross-process reduction wanted
        pl_module.log_dict({f"memory/{k}": float(v) for k, v in row.items() if k != "epoch"},
                           rank_zero_only=True)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict.get("epochs", []))
