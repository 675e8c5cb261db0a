"""EfficientNet-Lite's layers, in TensorFlow's conventions: batch norm with eps 1e-3 and
ReLU6, convolutions with TensorFlow's "same" padding (asymmetric at stride 2), and the two
block kinds (depthwise-separable and inverted residual) with stochastic depth. Kept apart from
:mod:`ser.models.efficientnet`, which assembles them into the Lite0/1/2 networks, because these
are what the converted TensorFlow weights need to give TensorFlow's numbers, whatever the
variant; module and parameter names are timm's, so state dicts load either way.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # TensorFlow's batch-norm eps, which the converted weights were trained with


class BatchNormAct(nn.BatchNorm2d):
    """Batch norm with TensorFlow's eps, then ReLU6 unless ``act`` is false (timm's
    BatchNormAct2d: the same parameters and buffers, so state dicts load either way)."""

    def __init__(self, channels: int, act: bool = True) -> None:
        super().__init__(channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class Conv2dSame(nn.Conv2d):
    """A stride-2 convolution with TensorFlow's "same" padding: the total padding depends on
    the input size, and an odd one puts the extra row and column at the bottom and right."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int,
                 groups: int = 1) -> None:
        super().__init__(channels_in, channels_out, kernel, stride, 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = F.pad(x, (*pads[1], *pads[0]))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def same_conv(channels_in: int, channels_out: int, kernel: int, stride: int = 1,
              groups: int = 1) -> nn.Conv2d:
    """TensorFlow's "same" convolution without bias: at stride 1 a fixed symmetric padding."""
    if stride == 1:
        return nn.Conv2d(channels_in, channels_out, kernel, 1, kernel // 2, groups=groups, bias=False)
    return Conv2dSame(channels_in, channels_out, kernel, stride, groups)


class ConvBlock(nn.Module):
    """EfficientNet-Lite's blocks: convolutions, each followed by batch norm (with ReLU6 on all
    but the last), plus a skip when the block keeps the shape. ``layers`` lists (name of the
    convolution, name of its norm, convolution) in order, with timm's names."""

    def __init__(self, layers: list[tuple[str, str, nn.Conv2d]], skip: bool) -> None:
        super().__init__()
        for i, (conv_name, norm_name, conv) in enumerate(layers):
            self.add_module(conv_name, conv)
            self.add_module(norm_name, BatchNormAct(conv.out_channels, act=i < len(layers) - 1))
        self.order = [(conv_name, norm_name) for conv_name, norm_name, _ in layers]
        self.has_skip = skip
        self.drop_path = 0.0   # stochastic depth: the chance that training skips the block's branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv_name, norm_name in self.order:
            y = getattr(self, norm_name)(getattr(self, conv_name)(y))
        if not self.has_skip:
            return y
        if self.training and self.drop_path > 0.0:
            # per example: the branch kept with chance 1 - p and scaled by 1 / (1 - p)
            keep = 1.0 - self.drop_path
            mask = torch.empty((y.shape[0],) + (1,) * (y.dim() - 1), dtype=y.dtype, device=y.device)
            y = y * mask.bernoulli_(keep).div_(keep)
        return y + x


def depthwise_separable(channels_in: int, channels_out: int, kernel: int, stride: int) -> ConvBlock:
    """Depthwise k×k conv + BN-ReLU6, pointwise conv + BN (timm's DepthwiseSeparableConv)."""
    return ConvBlock([("conv_dw", "bn1", same_conv(channels_in, channels_in, kernel, stride,
                                                   groups=channels_in)),
                      ("conv_pw", "bn2", same_conv(channels_in, channels_out, 1))],
                     skip=stride == 1 and channels_in == channels_out)


def inverted_residual(channels_in: int, channels_out: int, kernel: int, stride: int,
                      expansion: int) -> ConvBlock:
    """Pointwise expansion + BN-ReLU6, depthwise k×k + BN-ReLU6, pointwise projection + BN
    (MobileNetV2's block, timm's InvertedResidual)."""
    mid = channels_in * expansion
    return ConvBlock([("conv_pw", "bn1", same_conv(channels_in, mid, 1)),
                      ("conv_dw", "bn2", same_conv(mid, mid, kernel, stride, groups=mid)),
                      ("conv_pwl", "bn3", same_conv(mid, channels_out, 1))],
                     skip=stride == 1 and channels_in == channels_out)
