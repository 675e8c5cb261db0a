"""Normalising the front-end's bands by a group's statistics: per speaker, or per recording.

Much of what tells voices apart sits in the long-term spectrum: a speaker's mean level in each
band (vocal-tract length, microphone, room) and how much it varies. A network trained on a few
dozen voices learns them; subtracting each speaker's band means and dividing by their spread
(cepstral mean and variance normalisation, done on the log-mel image) leaves the changes
*within* a speaker, which is where emotion shows.

``data.speaker_norm`` chooses the group:

- ``speaker``: all of a speaker's items in one part and recording condition (SNR copy). For a
  test speaker this uses **that speaker's unlabelled test audio** (every block of the speaker in
  the test set), as the field's speaker-normalised results do: a transductive protocol.
- ``utterance``: the items of one recording (utterance) and condition only. It needs nothing
  beyond the recording being classified, so it is what a deployed model can do.

Statistics are per band and channel over all frames of the group's images, (G, C, H); each
image then becomes ``(x - mean_g) / std_g * std_ref + mean_ref`` with the training part's
overall statistics as the reference, so the images keep the scale the network's ImageNet
weights saw without it. Groups with one frame of spread below ``STD_FLOOR`` are only centred.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import torch

from ser.errors import SerError

GROUPINGS = ("speaker", "utterance")
STD_FLOOR = 1e-3  # images span [-1, 1]: a band flatter than this is only centred


def grouping_setting(value: object) -> str | None:
    """``data.speaker_norm`` -> ``"speaker"``, ``"utterance"`` or None (off)."""
    if value in (None, False) or str(value).lower() in ("none", "null", "false", "off", ""):
        return None
    if str(value) not in GROUPINGS:
        raise SerError(f"data.speaker_norm={value}: use speaker (each speaker's band statistics, "
                       "test speakers' from their own unlabelled test audio), utterance (each "
                       "recording's own) or null (off).")
    return str(value)


class GroupStatistics:
    """Band sums of images added group by group; :meth:`finish` gives means and spreads."""

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}
        self.sums: torch.Tensor | None = None     # (G, C, H) sum over frames
        self.squares: torch.Tensor | None = None  # (G, C, H) sum of squares
        self.frames: torch.Tensor | None = None   # (G,) frames counted

    def add(self, images: torch.Tensor, groups: Sequence[Hashable]) -> None:
        """(B, C, H, W) images whose item b belongs to ``groups[b]``."""
        x = images.detach().double().cpu()
        for g in groups:
            self.index.setdefault(g, len(self.index))
        rows = torch.tensor([self.index[g] for g in groups], dtype=torch.long)
        size = len(self.index)
        b, c, h, w = x.shape
        if self.sums is None:
            self.sums, self.squares = torch.zeros(size, c, h, dtype=torch.float64), torch.zeros(size, c, h, dtype=torch.float64)
            self.frames = torch.zeros(size, dtype=torch.float64)
        elif size > len(self.sums):
            grow = size - len(self.sums)
            self.sums = torch.cat([self.sums, self.sums.new_zeros(grow, c, h)])
            self.squares = torch.cat([self.squares, self.squares.new_zeros(grow, c, h)])
            self.frames = torch.cat([self.frames, self.frames.new_zeros(grow)])
        self.sums.index_add_(0, rows, x.sum(-1))
        self.squares.index_add_(0, rows, x.square().sum(-1))
        self.frames.index_add_(0, rows, torch.full((b,), float(w), dtype=torch.float64))

    def finish(self) -> "GroupNorm":
        if self.sums is None:
            raise SerError("data.speaker_norm found no images to take statistics from: the part is empty.")
        n = self.frames.view(-1, 1, 1)
        mean = self.sums / n
        std = (self.squares / n - mean.square()).clamp(min=0).sqrt()
        total = self.frames.sum()
        ref_mean = self.sums.sum(0) / total
        ref_std = (self.squares.sum(0) / total - ref_mean.square()).clamp(min=0).sqrt()
        return GroupNorm(dict(self.index), mean.float(), std.float(), ref_mean.float(), ref_std.float())


class GroupNorm:
    """The statistics of each group of one part, and how to apply them to a batch."""

    def __init__(self, index: dict[Hashable, int], mean: torch.Tensor, std: torch.Tensor,
                 ref_mean: torch.Tensor, ref_std: torch.Tensor) -> None:
        self.index, self.mean, self.std = index, mean, std
        self.ref_mean, self.ref_std = ref_mean, ref_std

    def with_reference(self, other: "GroupNorm") -> "GroupNorm":
        """These groups, scaled back to ``other``'s reference (the training part's)."""
        return GroupNorm(self.index, self.mean, self.std, other.ref_mean, other.ref_std)

    def __call__(self, images: torch.Tensor, groups: Iterable[Hashable]) -> torch.Tensor:
        """(B, C, H, W) -> the same shape, each item by its group's band statistics."""
        try:
            rows = torch.tensor([self.index[g] for g in groups], dtype=torch.long)
        except KeyError as exc:
            raise SerError(f"data.speaker_norm: no statistics for group {exc.args[0]!r}; the "
                           "statistics were taken from another set of items.") from None
        dev, dtype = images.device, images.dtype
        mean = self.mean[rows].to(dev, dtype).unsqueeze(-1)
        std = self.std[rows].to(dev, dtype).unsqueeze(-1)
        scale = torch.where(std > STD_FLOOR, self.ref_std.to(dev, dtype).unsqueeze(-1) / std.clamp(min=STD_FLOOR),
                            torch.ones_like(std))
        return (images - mean) * scale + self.ref_mean.to(dev, dtype).unsqueeze(-1)


def group_keys(grouping: str, utterance: Sequence[int], snr: Sequence[float],
               speakers: Sequence[str]) -> list[tuple]:
    """Each item's group: (speaker, SNR to the dB) or (utterance, SNR to the dB); ``speakers``
    holds the speaker of every utterance of the table the items index."""
    condition = [("clean" if s == float("inf") else round(float(s))) for s in snr]
    if grouping == "speaker":
        return [(str(speakers[int(u)] or ""), c) for u, c in zip(utterance, condition)]
    return [(int(u), c) for u, c in zip(utterance, condition)]
