"""The backbones: each registers its stage builder and the source of its ImageNet weights with
:func:`ser.models.transfer.register_backbone` when its module is imported. AlexNet (the paper's)
is here; EfficientNet-Lite0/1/2 in :mod:`ser.models.efficientnet`. Importing this module
registers them all, so :func:`build_backbone` knows every name."""

from __future__ import annotations

import os
from collections import OrderedDict

from torch import nn

from ser.models import efficientnet  # noqa: F401  (registers efficientnet_lite0/1/2)
from ser.models.transfer import (BACKBONES, WEIGHT_SOURCES, HubWeights, PackageWeights,  # noqa: F401
                                 TransferNet, WeightSource, build_backbone, frozen_in_chunks,
                                 load_exact_state, register_backbone)


@register_backbone("alexnet", HubWeights("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                                        "alexnet-owt-7be5be79.pth"))
def alexnet_stages(state: dict | None) -> "OrderedDict[str, nn.Module]":
    from torchvision.models import alexnet

    net = alexnet(weights=None)
    if state is not None:
        load_exact_state(net, state, "model.pretrained")
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    for i, layer in enumerate(net.features):
        stages[f"features.{i}"] = layer
    stages["avgpool"] = net.avgpool
    stages["flatten"] = nn.Flatten(1)
    for i, layer in enumerate(net.classifier):
        stages[f"classifier.{i}"] = layer
    return stages


def alexnet(num_classes: int = 4, pretrained: bool | str | os.PathLike | None = False,
            trainable_from: str = "features.10", trunk_chunk: int = 32, **ignored) -> TransferNet:
    """``conf/model/alexnet.yaml`` -> torchvision's AlexNet cut at ``trainable_from`` (its
    ``_target_``). ``ignored`` takes the keys meant for the LightningModule (``name``,
    ``channels_last``, ``compile``)."""
    return build_backbone("alexnet", num_classes, pretrained, trainable_from, int(trunk_chunk))
