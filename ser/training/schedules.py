"""Learning-rate schedules counted in optimiser steps, built from ``optim.scheduler`` (``_partial_``).

A schedule that needs the run's length takes ``total_steps``: the LightningModule passes the
trainer's ``estimated_stepping_batches`` (``trainer.max_steps`` when the budget is in steps), so
the same YAML fits a corpus of 300 blocks and one of 30,000.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int | float = 0.1,
                  final_ratio: float = 0.01) -> LambdaLR:
    """Linear warm-up from 0 to each group's learning rate, then cosine decay to ``final_ratio`` of it.

    ``warmup_steps``: a count, or a fraction of ``total_steps`` when below 1. Step ``s`` (0-based)
    gets ``lr * s / warmup`` during warm-up (the first step learns a little, never 0 for s >= 1),
    then ``lr * (final + (1 - final) * (1 + cos(pi * progress)) / 2)``.
    """
    total = max(1, int(total_steps))
    warm = int(round(warmup_steps * total)) if 0 < warmup_steps < 1 else int(warmup_steps)
    warm = min(max(0, warm), total - 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
