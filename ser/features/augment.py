"""Training-time augmentation beyond noise: SpecAugment masks (``augment=``).

SpecAugment is a switch in ``conf/augment/recipe.yaml``, off in the paper's experiments
(``augment=none``). It acts on training batches only, inside the LightningModule, on the
front-end's images, and never reaches validation or test sets. Randomness comes from torch's
global generator, seeded by ``seed``: the same seed gives the same masks on a CPU. It sits
with the front-ends it acts around; the LightningModule applies it to training batches.
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


def build_specaugment(cfg: dict | None) -> SpecAugment | None:
    """``augment.specaugment`` -> a :class:`SpecAugment`, or None when it is null/absent."""
    if not cfg:
        return None
    return SpecAugment(**{k: (int(v) if k.endswith("masks") else float(v)) for k, v in cfg.items()})

