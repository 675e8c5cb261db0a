"""ImageNet CNNs cut into a frozen trunk, fine-tuned layers and a new classification head.

Which layers are frozen is a config choice (``model.trainable_from``): everything before that
layer runs under ``torch.no_grad`` in inference mode, so it stores no activations for backward
and holds no optimiser state; everything from it on is fine-tuned; the last layer is replaced
by a fresh ``Linear`` with one output per emotion class.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from ser.errors import SerError
from ser.models.weights import load_hub_weights, load_state_dict_file

# A builder returns the network as ordered named stages (the head last) given a state dict or None.
StageBuilder = Callable[[dict | None], "OrderedDict[str, nn.Module]"]
BACKBONES: dict[str, StageBuilder] = {}


def register_backbone(name: str) -> Callable[[StageBuilder], StageBuilder]:
    """Adding a backbone is one small builder function plus a YAML file in conf/model/."""
    def wrap(fn: StageBuilder) -> StageBuilder:
        BACKBONES[name] = fn
        return fn
    return wrap


class TransferNet(nn.Module):
    """(B, 3, H, W) normalised images -> (B, num_classes) logits."""

    def __init__(self, frozen: nn.Sequential, finetune: nn.Sequential, head: nn.Linear):
        super().__init__()
        self.frozen = frozen
        self.finetune = finetune
        self.head = head
        for p in self.frozen.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        self.frozen.eval()  # frozen dropout/batch-norm must behave as in inference
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.frozen(images)
        return self.head(self.finetune(features))


def _resolve_weights(name: str, pretrained: bool | str, url: str, file_name: str) -> dict | None:
    if pretrained is False or (isinstance(pretrained, str) and pretrained.lower() in ("false", "none", "")):
        return None
    if pretrained is True or (isinstance(pretrained, str) and pretrained.lower() == "true"):
        return load_hub_weights(url, file_name)
    return load_state_dict_file(pretrained)


def _load_exact(module: nn.Module, state: dict, origin: str) -> None:
    """Weights must fit exactly: a partial load would be random weights in disguise."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SerError(f"The weights from {origin} do not fit this network: "
                       f"{str(exc).splitlines()[0]} ... Pass weights saved from the same "
                       "architecture (a full ImageNet state dict).") from exc


@register_backbone("alexnet")
def alexnet_stages(state: dict | None) -> "OrderedDict[str, nn.Module]":
    from torchvision.models import alexnet

    net = alexnet(weights=None)
    if state is not None:
        _load_exact(net, state, "model.pretrained")
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    for i, layer in enumerate(net.features):
        stages[f"features.{i}"] = layer
    stages["avgpool"] = net.avgpool
    stages["flatten"] = nn.Flatten(1)
    for i, layer in enumerate(net.classifier):
        stages[f"classifier.{i}"] = layer
    return stages


WEIGHT_SOURCES = {
    "alexnet": ("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth"),
}


def build_backbone(name: str = "alexnet", num_classes: int = 4, pretrained: bool | str = False,
                   trainable_from: str = "features.10") -> tuple[TransferNet, dict[str, list[nn.Parameter]]]:
    """The network and its parameter groups: 'finetune' (e.g. Conv5, FC6, FC7) and 'head' (new FC8).

    ``trainable_from`` names the first fine-tuned stage; for AlexNet ``features.10`` is Conv5,
    so Conv1–Conv4 stay frozen as in the paper.
    """
    if name not in BACKBONES:
        raise SerError(f"Unknown backbone `model.name={name}`; known: {', '.join(sorted(BACKBONES))}. "
                       "Pick one with `model=<name>` (a file in conf/model/).")
    url, file_name = WEIGHT_SOURCES.get(name, ("", f"{name}.pth"))
    stages = BACKBONES[name](_resolve_weights(name, pretrained, url, file_name))
    names = list(stages)
    if trainable_from not in stages:
        raise SerError(f"`model.trainable_from={trainable_from}` is not a layer of {name}; "
                       f"its layers are: {', '.join(names)}.")
    head_name = names[-1]
    old_head = stages[head_name]
    if not isinstance(old_head, nn.Linear):
        raise SerError(f"The last stage of backbone {name} must be a Linear classifier, got {old_head}.")
    cut = names.index(trainable_from)
    frozen = nn.Sequential(OrderedDict((n.replace(".", "_"), stages[n]) for n in names[:cut]))
    finetune = nn.Sequential(OrderedDict((n.replace(".", "_"), stages[n]) for n in names[cut:-1]))
    head = nn.Linear(old_head.in_features, num_classes)
    net = TransferNet(frozen, finetune, head)
    groups = {"finetune": list(finetune.parameters()), "head": list(head.parameters())}
    return net, groups
