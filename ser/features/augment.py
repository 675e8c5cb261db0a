"""Training-time augmentation beyond noise: SpecAugment masks, mixup, random gain (``augment=``).

Each is a switch in ``conf/augment/``, all off in the paper's experiments (``augment=none``).
They act on training batches only, inside the LightningModule, after (masks, mixup) or before
(gain) the front-end, so they apply to any front-end and never reach validation or test sets.
Randomness comes from torch's global generator, seeded by ``seed``: the same seed gives the
same masks on a CPU. They sit with the front-ends they act around; the LightningModule
applies them to training batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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


def mixup(images: torch.Tensor, labels: torch.Tensor, alpha: float
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix each image with another of the batch: (images, labels, partner labels, weight).

    ``lam ~ Beta(alpha, alpha)`` (folded to >= 0.5, so the first label dominates); the loss is
    ``lam * CE(labels) + (1 - lam) * CE(partner labels)``.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    lam = max(lam, 1.0 - lam)
    order = torch.randperm(images.shape[0], device=images.device)
    mixed = images.mul(lam).add_(images[order], alpha=1.0 - lam)
    return mixed, labels, labels[order], lam


def random_gain(blocks: torch.Tensor, max_db: float) -> torch.Tensor:
    """Scale each (B, T) block by a gain drawn uniformly in ±``max_db`` dB.

    Both built-in front-ends peak-normalise each block, so for them this changes nothing; it is
    there for front-ends that see absolute level (a waveform backbone, your own features).
    """
    if max_db <= 0:
        return blocks
    db = (torch.rand(blocks.shape[0], 1, device=blocks.device) * 2 - 1) * max_db
    return blocks * torch.pow(10.0, db / 20.0).to(blocks.dtype)


def build_specaugment(cfg: dict | None) -> SpecAugment | None:
    """``augment.specaugment`` -> a :class:`SpecAugment`, or None when it is null/absent."""
    if not cfg:
        return None
    return SpecAugment(**{k: (int(v) if k.endswith("masks") else float(v)) for k, v in cfg.items()})

