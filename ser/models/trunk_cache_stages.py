"""The trunk cache as the LightningModule's stages: the training and validation caches made
for a fit when ``trunk_cache.enabled`` allows, the batches' logits through them, and what they
did for run.json (:mod:`ser.models.trunk_cache` holds the cache itself and why it may be off).
A mixin of :class:`ser.models.module.EmotionClassifier`, kept apart so that the module reads as
the training loop while this is about when frozen layers may be skipped.
"""

from __future__ import annotations

from typing import Any

import torch

from ser.models.trunk_cache import TrunkCache, trunk_cache_reason


class TrunkCacheStages:
    """The trunk-cache hooks of :class:`~ser.models.module.EmotionClassifier`.

    The host LightningModule provides ``net`` (with ``trunk``, ``tail`` and ``has_frozen``),
    ``specaugment``, ``time_reversal``, ``trunk_cache_cfg``, ``caches`` (stage -> :class:`TrunkCache`),
    ``trunk_cache_report`` and the trainer.
    """

    def _stage_cache(self) -> TrunkCache | None:
        if self._trainer is None:
            return None
        if self.trainer.training:
            return self.caches.get("train")
        if self.trainer.validating or self.trainer.sanity_checking:
            return self.caches.get("val")
        return None

    def _batch_logits(self, batch: dict) -> torch.Tensor:
        """Logits of a training or validation batch, through the trunk cache when it is on:
        kept features go straight to the fine-tuned stages; new ones are computed and kept."""
        if "trunk" in batch:
            return self.net.tail(batch["trunk"])
        cache = self._stage_cache()
        if cache is None or "item" not in batch:
            return self(batch["image"])
        features = self.net.trunk(batch["image"])
        cache.store(batch["item"], features)
        return self.net.tail(features)

    def _setup_trunk_caches(self, dm: Any) -> None:
        """Training and validation caches for this fit, when ``trunk_cache.enabled`` allows."""
        self._close_caches()
        cfg = self.trunk_cache_cfg
        if str(cfg.get("enabled", False)).lower() in ("false", "0", "none", "off") or dm is None \
                or not hasattr(dm, "train_dataset"):
            return
        augments = self.specaugment is not None or self.time_reversal is not None
        repeats = not dm.train_snrs or bool(dm.noise_cfg.get("fixed", False))
        sizes = dict(max_ram_gb=float(cfg.get("max_ram_gb", 4.0)),
                     max_disk_gb=float(cfg.get("max_disk_gb", 0.0)), spill_dir=cfg.get("spill_dir"))
        if not self.net.has_frozen:
            return  # nothing frozen: nothing to keep
        self.caches["val"] = TrunkCache(len(dm.val_dataset()), name="validation", **sizes)
        reason = trunk_cache_reason(self.net.has_frozen, repeats, augments)
        if reason is None:
            self.caches["train"] = TrunkCache(len(dm.train_dataset()), name="training", **sizes)
        elif self.trainer.is_global_zero:
            print(f"Trunk cache: validation only; training recomputes the frozen layers because "
                  f"{reason}.", flush=True)

    def on_fit_end(self) -> None:
        # what the caches did, for run.json: batches served from the cache and computed
        self.trunk_cache_report = {c.name: {"batches_from_cache": c.hits, "batches_computed": c.misses,
                                          "store": c.where} for c in self.caches.values()}
        self._close_caches()

    def _close_caches(self) -> None:
        for cache in self.caches.values():
            cache.close()
        self.caches = {}
