"""Training-time augmentation beyond noise: SpecAugment masks, vocal-tract length and speed
perturbation (``augment=``).

SpecAugment is a switch in ``conf/augment/recipe.yaml``, off in the paper's experiments
(``augment=none``); vocal-tract length perturbation (``augment.vtlp``) was measured as no help
and is off unless set (``experiment=vtlp``). They act on training batches only, inside the
LightningModule, on the front-end's images, and never reach validation or test sets.
Randomness comes from torch's global generator, seeded by ``seed``: the same seed gives the
same masks on a CPU. They sit with the front-ends they act around; the LightningModule
applies them to training batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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


@dataclass(frozen=True)
class VocalTractWarp:
    """Vocal-tract length perturbation (Jaitly & Hinton 2013) and speed perturbation of
    spectrogram images, per image, batched: a speaker-invariance augmentation.

    A longer or shorter vocal tract moves every formant by one factor; so each image's frequency
    axis is warped by a factor alpha drawn uniformly in [1 - max_warp, 1 + max_warp]
    (piecewise linear: band f moves to alpha * f up to a knee at ``knee`` of the height, then
    linearly to the top band, which stays put, so nothing leaves the image). ``max_stretch`` > 0
    also stretches the time axis by a factor drawn in [1 - max_stretch, 1 + max_stretch]
    (speaking rate; frames past the block's end are reflected). Rows are expected with the
    highest band first (row 0), as the built-in front-ends draw them; on a mel axis the warp is
    applied to mel bands, the same approximation as warping mel filter centres.
    (B, C, H, W) in, a new (B, C, H, W) tensor out; randomness from torch's global generator.
    """

    max_warp: float = 0.1
    max_stretch: float = 0.0
    knee: float = 0.8

    def factors(self, n: int, spread: float, device: torch.device) -> torch.Tensor:
        return 1.0 + (torch.rand(n, device=device) * 2.0 - 1.0) * spread

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        if (self.max_warp <= 0 and self.max_stretch <= 0) or h < 2:
            return images
        dev, dtype = images.device, torch.float32
        alpha = self.factors(b, self.max_warp, dev).view(b, 1)
        # band index counted from the bottom (0 = lowest band) of each output row
        f_out = torch.arange(h - 1, -1, -1, device=dev, dtype=dtype).view(1, h)
        top = float(h - 1)
        knee_out = self.knee * top * torch.minimum(alpha, torch.ones_like(alpha))
        knee_in = knee_out / alpha
        above = knee_in + (f_out - knee_out) * (top - knee_in) / (top - knee_out).clamp(min=1e-6)
        f_in = torch.where(f_out <= knee_out, f_out / alpha, above)
        # grid_sample's y: -1 is row 0 (the top band), +1 the last row (the lowest band)
        y = 1.0 - 2.0 * f_in / top  # (B, H)
        rate = self.factors(b, self.max_stretch, dev).view(b, 1)
        t_in = torch.arange(w, device=dev, dtype=dtype).view(1, w) * rate
        x = 2.0 * t_in / max(w - 1, 1) - 1.0  # (B, W)
        grid = torch.stack([x.unsqueeze(1).expand(b, h, w), y.unsqueeze(2).expand(b, h, w)], dim=-1)
        out = nn.functional.grid_sample(images.float(), grid, mode="bilinear",
                                        padding_mode="reflection", align_corners=True)
        return out.to(images.dtype)


def build_vocal_tract_warp(cfg: dict | None) -> VocalTractWarp | None:
    """``augment.vtlp`` -> a :class:`VocalTractWarp`, or None when it is null/absent/all zero."""
    if not cfg:
        return None
    warp = VocalTractWarp(**{k: float(v) for k, v in cfg.items()})
    return warp if warp.max_warp > 0 or warp.max_stretch > 0 else None


def build_specaugment(cfg: dict | None) -> SpecAugment | None:
    """``augment.specaugment`` -> a :class:`SpecAugment`, or None when it is null/absent."""
    if not cfg:
        return None
    return SpecAugment(**{k: (int(v) if k.endswith("masks") else float(v)) for k, v in cfg.items()})

