"""The per-speaker (or per-recording) image normalisation of ``data.speaker_norm`` as the
LightningModule's stages: each part's group statistics taken at the start of fitting and
testing, and applied to every rendered batch of that part (:mod:`ser.features.group_norm` holds
the statistics themselves). A mixin of :class:`ser.models.module.EmotionClassifier`, kept apart
so that the module reads as the training loop while this is about which part a batch is from
and whose statistics it gets.
"""

from __future__ import annotations

import torch

from ser.errors import SerError
from ser.features.group_norm import GroupNorm, GroupStatistics, group_keys


class GroupNormStages:
    """The group-statistics hooks of :class:`~ser.models.module.EmotionClassifier`.

    The host LightningModule provides ``grouping`` (None: off), ``group_norms`` (part ->
    :class:`GroupNorm`), ``_speakers_of`` (part -> each utterance's speaker), :meth:`render`
    and the trainer; parts are ``train``, ``val`` and ``test/<dataloader index>``.
    """

    def _part_name(self, dataloader_idx: int) -> str | None:
        if self._trainer is None:
            return None
        if self.trainer.training:
            return "train"
        if self.trainer.validating or self.trainer.sanity_checking:
            return "val"
        if self.trainer.testing:
            return f"test/{dataloader_idx}"
        return None

    def _group_normalise(self, batch: dict, dataloader_idx: int) -> torch.Tensor:
        part = self._part_name(dataloader_idx)
        norm = self.group_norms.get(part or "")
        if norm is None:
            raise SerError(f"data.speaker_norm={self.grouping}: no group statistics for the "
                           f"{part or 'current'} items; they are taken when fitting and testing "
                           "through train.py or evaluate.py, not for single recordings.")
        return norm(batch["image"], self._group_keys(batch, self._speakers_of.get(part, [])))

    def _group_keys(self, batch: dict, speakers: list[str]) -> list[tuple]:
        return group_keys(self.grouping, batch["utterance"].tolist(), batch["snr"].tolist(), speakers)

    @torch.no_grad()
    def _collect_group_norm(self, loader, speakers: list[str]) -> GroupNorm:
        """One pass over ``loader``'s items (one epoch's noise draws): each group's band
        statistics of the rendered images."""
        stats = GroupStatistics()
        for batch in loader:
            clean = batch["clean"].to(self.device)
            images = self.render(clean, batch["noise"].to(self.device), batch["snr"].to(self.device))
            stats.add(images, self._group_keys(batch, speakers))
        return stats.finish()

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if self.grouping is None or dm is None:
            return
        speakers = dm.utterance_speakers()
        self._speakers_of = {"train": speakers, "val": speakers}
        train = self._collect_group_norm(dm.train_dataloader(), speakers)
        self.group_norms = {"train": train,
                            "val": self._collect_group_norm(dm.val_dataloader(), speakers).with_reference(train)}

    def _reference(self, dm) -> GroupNorm:
        """The training part's statistics, every other part's reference scale (a re-test, which
        has none yet, takes them afresh once)."""
        if "train" not in self.group_norms:
            self.group_norms["train"] = self._collect_group_norm(dm.train_dataloader(), dm.utterance_speakers())
        return self.group_norms["train"]

    def on_validation_start(self) -> None:
        """A validation pass of its own (``trainer.validate``: the calibration fit, after training
        or in a re-test) takes the statistics of the items it holds now, which may include
        noisier copies of the part (``calibration.fit_snrs``) that fitting never saw."""
        dm = getattr(self.trainer, "datamodule", None)
        if self.grouping is None or dm is None or self.trainer.state.fn != "validate":
            return
        speakers = dm.utterance_speakers()
        self._speakers_of["val"] = speakers
        self.group_norms["val"] = self._collect_group_norm(dm.val_dataloader(), speakers).with_reference(
            self._reference(dm))

    def on_test_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if self.grouping is None or dm is None:
            return
        reference = self._reference(dm)
        for idx, (name, loader) in enumerate(zip(dm.test_set_names, dm.test_dataloader())):
            speakers = dm.utterance_speakers(name)
            self._speakers_of[f"test/{idx}"] = speakers
            self.group_norms[f"test/{idx}"] = self._collect_group_norm(loader, speakers).with_reference(reference)
