"""Per-batch outputs -> whole-set columns, each item once even under DDP: what the validation
and test metrics of :class:`ser.models.module.EmotionClassifier` and the calibration fit
(:mod:`ser.training.calibration_fit`) are computed on. Its own module because it is about the
sharding sampler and the process group, not about the network: both callers need exactly the
items one process would see, and must agree on which copy of a padded item counts.
"""

from __future__ import annotations

from typing import Any

import torch


def gather_items(batches: list[tuple[torch.Tensor, ...]], key: tuple[int, ...]) -> list[torch.Tensor]:
    """Per-batch output columns -> whole-set columns; under DDP every process's, each item once.

    ``batches`` holds one tuple of (B,) or (B, C) CPU tensors per batch; ``key`` names the
    columns that identify an item (the block id; with the SNR too in validation, which holds
    every block at each training SNR). The sharding sampler pads the processes' shares by
    repeating items, so the first copy of each key is kept: the metrics then see exactly the
    items one process would. Every process gets the same columns (a collective: all call it).
    """
    columns = [torch.cat(c) for c in zip(*batches)] if batches else []
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return columns
    shares: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shares, columns)
    shares = [s for s in shares if s]
    if not shares:
        return []
    columns = [torch.cat(c) for c in zip(*shares)]
    first: dict[tuple, int] = {}
    for i, k in enumerate(zip(*(columns[j].tolist() for j in key))):
        first.setdefault(k, i)
    keep = torch.tensor(sorted(first.values()), dtype=torch.long)
    return [c[keep] for c in columns]
