"""Frozen layers computed once: the trunk's output per dataset item, kept after first sight.

With clean training (``snr=clean``) or noise fixed once (``noise.fixed=true``: the paper's
Tables 5 and 6) and no augmentation, a training item's image is the same in every epoch, and
the frozen trunk (``model.trainable_from``) maps it to the same features: recomputing them is
most of a step's work (AlexNet's Conv1–Conv4 and the image itself). A :class:`TrunkCache`
holds those features by item index; once every item of a batch is held, the step skips the
image and the trunk and runs only the fine-tuned stages. Validation items never change, so
they are cached whenever a trunk is frozen.

Memory is bounded: the cache takes ``max_ram_gb`` of RAM, beyond that a memory-mapped file of
up to ``max_disk_gb`` in a temporary folder (deleted with the cache), beyond both it stays off
and says so once. Nothing of it goes into checkpoints; a resumed run fills it again.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def trunk_cache_reason(has_frozen: bool, repeats: bool, augments: bool) -> str | None:
    """Why the training trunk cache must stay off (None: it may be used).

    ``has_frozen``: the network has frozen layers (``TransferNet.has_frozen``);
    ``repeats``: every training item's input is the same each epoch (clean or fixed noise);
    ``augments``: SpecAugment or time reversal changes inputs from epoch to epoch.
    """
    if not has_frozen:
        return "no layer is frozen (model.trainable_from is the first layer)"
    if not repeats:
        return "training noise is drawn afresh each epoch (use snr=clean or noise.fixed=true)"
    if augments:
        return "augmentation changes the inputs every epoch (augment=none turns it off)"
    return None


class TrunkCache:
    """Features of ``n_items`` items, (n_items, *feature_shape), filled by :meth:`store`.

    ``device`` is where :meth:`lookup` returns them (the training device); the store itself
    lives in CPU RAM or a memory-mapped file.
    """

    def __init__(self, n_items: int, max_ram_gb: float = 4.0, max_disk_gb: float = 0.0,
                 spill_dir: str | Path | None = None, name: str = "training") -> None:
        self.n_items, self.name = int(n_items), name
        self.max_ram, self.max_disk = float(max_ram_gb) * 2**30, float(max_disk_gb) * 2**30
        self.spill_dir = spill_dir
        self.filled = torch.zeros(self.n_items, dtype=torch.bool)
        self.store_tensor: torch.Tensor | None = None
        self.disabled: str | None = None
        self._spill: tempfile.TemporaryDirectory | None = None
        self.hits = self.misses = 0

    @property
    def where(self) -> str:
        if self.disabled:
            return f"off ({self.disabled})"
        if self.store_tensor is None:
            return "empty"
        kind = "memory-mapped file" if self._spill is not None else "RAM"
        return f"{self.store_tensor.numel() * self.store_tensor.element_size() / 2**20:.0f} MiB in {kind}"

    def _allocate(self, row: torch.Tensor) -> None:
        shape = (self.n_items, *row.shape[1:])
        size = math.prod(shape) * row.element_size()
        if size <= self.max_ram:
            with torch.inference_mode(False):
                self.store_tensor = torch.empty(shape, dtype=row.dtype)
        elif size <= self.max_disk:
            self._spill = tempfile.TemporaryDirectory(prefix="ser-trunk-", dir=self.spill_dir)
            numpy_dtype = torch.empty(0, dtype=row.dtype).numpy().dtype
            mapped = np.memmap(Path(self._spill.name) / f"{self.name}.f", dtype=numpy_dtype,
                               mode="w+", shape=shape)
            self.store_tensor = torch.from_numpy(mapped)
        else:
            self.disabled = (f"{size / 2**30:.1f} GiB of features would not fit in "
                             f"trunk_cache.max_ram_gb={self.max_ram / 2**30:g} or "
                             f"max_disk_gb={self.max_disk / 2**30:g}")
            log.warning("Trunk cache (%s items): off, %s.", self.name, self.disabled)
            return
        log.info("Trunk cache (%s items): %s.", self.name, self.where)

    def holds(self, items: torch.Tensor) -> bool:
        """True when every item of the batch ((B,) int64 indices) is cached."""
        return self.store_tensor is not None and bool(self.filled[items.cpu()].all())

    def lookup(self, items: torch.Tensor, device: torch.device) -> torch.Tensor:
        """(B, *feature_shape) features of ``items`` on ``device``; all must be :meth:`holds`."""
        self.hits += 1
        rows = self.store_tensor[items.cpu()]
        return rows.to(device, non_blocking=True)

    def store(self, items: torch.Tensor, features: torch.Tensor) -> None:
        """Keep ``features`` (B, ...) for ``items`` (B,); items seen before are left as they are."""
        self.misses += 1
        if self.disabled:
            return
        if self.store_tensor is None:
            self._allocate(features)
            if self.store_tensor is None:
                return
        unique, first = np.unique(items.cpu().numpy(), return_index=True)
        unique, first = torch.from_numpy(unique), torch.from_numpy(first)
        new = ~self.filled[unique]
        if bool(new.any()):
            rows = first[new].to(features.device)
            self.store_tensor[unique[new]] = features.detach()[rows].cpu()
            self.filled[unique[new]] = True

    def close(self) -> None:
        self.store_tensor = None
        self.filled.zero_()
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None
