"""The paper's resize, first half: antialiased bilinear resize that gives PIL's bytes.

``torchvision.transforms.Resize`` on a PIL image calls PIL's ``Image.resize(BILINEAR)``: a
triangle filter widened by the downscale factor (antialiasing), applied horizontally then
vertically in fixed-point arithmetic, rounding to uint8 after each pass. On the CPU torch's
uint8 antialiased bilinear kernel follows the same scheme (it was written to match PIL), and
it is the fastest path we have. Elsewhere (CUDA) we resize one axis at a time in float32 and
round to bytes between the passes, which reproduces PIL's two-pass rounding.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _resize_axis(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One antialiased bilinear pass in float32, rounded half up to bytes as PIL's >> does."""
    resized = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized.add_(0.5).floor_().clamp_(0.0, 255.0)


class Resize(nn.Module):
    """(B, C, H, W) -> (B, C, *size), antialiased bilinear.

    uint8 in, uint8 out with PIL's rounding (the path the pipeline uses); float in, float out
    (plain antialiased bilinear interpolation). Channels-last input stays channels-last.
    """

    def __init__(self, size: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] == self.size:
            return image
        if image.dtype != torch.uint8:
            return F.interpolate(image, size=self.size, mode="bilinear", antialias=True,
                                 align_corners=False)
        if image.device.type == "cpu":
            return F.interpolate(image, size=self.size, mode="bilinear", antialias=True,
                                 align_corners=False)
        return self.two_pass(image)

    def two_pass(self, image: torch.Tensor) -> torch.Tensor:
        """PIL's horizontal-then-vertical passes with byte rounding in between, in float32."""
        height = image.shape[-2]
        wide = _resize_axis(image.float(), (height, self.size[1]))
        return _resize_axis(wide, self.size).to(torch.uint8)
