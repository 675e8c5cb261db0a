"""The extension point for networks: what training, the trunk cache, the optimiser groups and
inference ask of the object a ``conf/model/`` file's ``_target_`` returns.

A new network is one file holding a builder ``(num_classes, **its keys) -> Network`` and one
YAML in conf/model/ naming it; :func:`ser.models.builders.build_network` checks the result
against this protocol and says what is missing. The ImageNet CNNs
(:class:`ser.models.transfer.TransferNet`) and the speech encoders
(:class:`ser.models.speech_net.SpeechEncoderNet`) are the two kinds today.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Network(Protocol):
    """(B, ...) front-end output -> (B, n_classes) logits, split where training needs it.

    ``trunk`` is the frozen part (no gradient, eval mode): when ``has_frozen`` and the inputs
    repeat across epochs its output is cached (:mod:`ser.models.trunk_cache`). ``tail`` is the
    rest, ``head(embed(features))`` where the network has a single embedding below its head.
    ``finetune_stages`` lists the trained stages below the head, lowest first, for layer-wise
    learning rates (``optim.layer_decay``).
    """

    has_frozen: bool
    head: nn.Module

    def trunk(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def tail(self, features: torch.Tensor) -> torch.Tensor: ...

    def finetune_stages(self) -> list[tuple[str, nn.Module]]: ...

    def forward(self, inputs: torch.Tensor) -> torch.Tensor: ...


MEMBERS = ("has_frozen", "head", "trunk", "tail", "finetune_stages", "forward")
