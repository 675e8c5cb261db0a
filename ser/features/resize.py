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


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of torch's antialiased bilinear resize along one axis (PIL's)."""
    eye = torch.eye(n_in, dtype=torch.float64).view(1, 1, n_in, n_in)
    rows = F.interpolate(eye, size=(n_in, n_out), mode="bilinear", antialias=True, align_corners=False)
    return rows[0, 0].t().float().contiguous()


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

    def by_matrices(self, image: torch.Tensor) -> torch.Tensor:
        """Byte-valued float (B, C, H, W) -> (B, C, *size): PIL's two passes as two matrix
        products with byte rounding after each, the form ONNX export traces (the matrices are
        constants of the traced input's size)."""
        height, width = int(image.shape[-2]), int(image.shape[-1])
        if (height, width) == self.size:
            return image
        cols = resize_matrix(width, self.size[1]).t().contiguous().to(image.device)
        rows = resize_matrix(height, self.size[0]).to(image.device)
        wide = torch.floor(torch.matmul(image, cols) + 0.5).clamp(0.0, 255.0)
        return torch.floor(torch.matmul(rows, wide) + 0.5).clamp(0.0, 255.0)

    def two_pass(self, image: torch.Tensor) -> torch.Tensor:
        """PIL's horizontal-then-vertical passes with byte rounding in between, in float32."""
        height = image.shape[-2]
        wide = _resize_axis(image.float(), (height, self.size[1]))
        return _resize_axis(wide, self.size).to(torch.uint8)
