"""Training-time augmentation beyond noise: SpecAugment masks and time reversal (``augment=``).

SpecAugment is a switch in ``conf/augment/recipe.yaml``, off in the paper's experiments
(``augment=none``). It acts on training batches only, inside the LightningModule, on the
front-end's images, and never reaches validation or test sets. Randomness comes from torch's
global generator, seeded by ``seed``: the same seed gives the same masks on a CPU. It sits
with the front-ends it acts around; the LightningModule applies it to training batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ser.errors import SerError


@dataclass(frozen=True)
class SpecAugment:
    """Zero ``freq_masks`` bands of rows and ``time_masks`` bands of columns per image.

    Widths are fractions of the image's height (frequency) and width (time); each mask's width
    is drawn uniformly in [0, max width]. Zero is the normalised images' mid-grey, so a mask
    removes information without adding a colour the network never saw. (B, C, H, W) in,
    the same tensor masked in place out.
    """

    freq_masks: int = 2
    freq_width: float = 0.15
    time_masks: int = 2
    time_width: float = 0.15

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        keep = torch.ones(b, h, w, dtype=torch.bool, device=images.device)
        for count, width, size, axis in ((self.freq_masks, self.freq_width, h, 1),
                                         (self.time_masks, self.time_width, w, 2)):
            for _ in range(int(count)):
                lengths = (torch.rand(b, device=images.device) * width * size).long()
                starts = (torch.rand(b, device=images.device) * (size - lengths + 1)).long()
                pos = torch.arange(size, device=images.device).view(1, -1)
                band = (pos >= starts.view(-1, 1)) & (pos < (starts + lengths).view(-1, 1))
                keep &= ~(band.unsqueeze(2) if axis == 1 else band.unsqueeze(1))
        images.mul_(keep.unsqueeze(1).to(images.dtype))
        return images


def build_specaugment(cfg: dict | None) -> SpecAugment | None:
    """``augment.specaugment`` -> a :class:`SpecAugment`, or None when it is null/absent."""
    if not cfg:
        return None
    return SpecAugment(**{k: (int(v) if k.endswith("masks") else float(v)) for k, v in cfg.items()})


@dataclass(frozen=True)
class TimeReversal:
    """Play a share ``p`` of the training blocks backwards, before noise is mixed in.

    Reversed speech keeps what a block's statistics hold (its long-term spectrum, pitch range,
    loudness and voice quality) and loses its words: a network that sees both directions must
    find the emotion in what they share, the order-free cues that functionals such as ComParE's
    measure, rather than in sentences that a scripted corpus gives each emotion. (B, T) clean
    blocks in, a (B, T) tensor out; randomness from torch's global generator (seeded).
    """

    p: float = 0.0

    def __call__(self, clean: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(clean.shape[0], device=clean.device) < self.p
        return torch.where(flip.view(-1, *([1] * (clean.dim() - 1))), clean.flip(-1), clean)


def build_time_reversal(p: float | None) -> TimeReversal | None:
    """``augment.time_reverse`` (a share, 0-1) -> a :class:`TimeReversal`, or None when 0/absent."""
    if not p:
        return None
    p = float(p)
    if not 0.0 < p <= 1.0:
        raise SerError(f"augment.time_reverse={p}: give the share of training blocks played "
                       "backwards, from 0 (off) to 1.")
    return TimeReversal(p)
