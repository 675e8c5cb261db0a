"""Parameter groups and optimisers from ``conf/optim``: which weights learn, and how fast.

The optimiser and its scheduler are Hydra partials (``_target_`` + ``_partial_``) in the YAML
file, so a new optimiser is a new file, not an edit of the LightningModule. This module only
decides the parameter groups: the fine-tuned stages at ``optim.lr`` (each stage scaled by
``optim.layer_decay`` per stage below the top when that is set), the new head's weight and bias
at their own rates (the paper's Table 4), and no weight decay for normalisation layers and
biases when ``optim.decay_norm_and_bias=false``. It sits with the models because the groups
follow a network's parts (frozen trunk, fine-tuned stages, head), and the LightningModule
answers ``configure_optimizers`` from it.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ser.configs import build


def _split_decay(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights that decay, 1-d parameters: biases and normalisation scales) of trainable params."""
    decay, flat = [], []
    for p in module.parameters():
        if p.requires_grad:
            (flat if p.ndim <= 1 else decay).append(p)
    return decay, flat


def _stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The trained stages below the head, lowest first: a speech encoder's ``finetune_stages``
    (its transformer layers) or a TransferNet's ``finetune`` children."""
    stages = net.finetune_stages()
    return [(name, m) for name, m in stages if any(p.requires_grad for p in m.parameters())]


def parameter_groups(net: nn.Module, o: dict) -> list[dict[str, Any]]:
    """Groups for ``net`` (a TransferNet or a SpeechEncoderNet: trained stages and a ``head``).

    Names: ``finetune`` (one group), or ``finetune.<stage>`` under layer decay, each with
    ``lr = base * layer_decay ** (stages above it)``, where ``base`` is the network's own
    ``finetune_lr`` when it has one (a speech encoder's ``model.encoder_lr``: pre-trained
    transformers fine-tune at a small fraction of a new head's rate) and ``optim.lr`` otherwise;
    then ``head_weight`` (the head's matrices) and ``head_bias`` (its biases and other 1-d
    parameters, e.g. a speech head's layer weights). Frozen parameters are in no group.
    """
    lr = float(getattr(net, "finetune_lr", None) or o["lr"])
    decay_all = bool(o.get("decay_norm_and_bias", True))
    stages = _stages(net)
    layer_decay = o.get("layer_decay")
    units = ([(f"finetune.{n}", m, lr * float(layer_decay) ** (len(stages) - 1 - i))
              for i, (n, m) in enumerate(stages)] if layer_decay else
             [("finetune", nn.ModuleList([m for _, m in stages]), lr)] if stages else [])
    groups: list[dict[str, Any]] = []
    for name, module, unit_lr in units:
        decay, flat = _split_decay(module)
        if decay_all:
            params = decay + flat
            if params:
                groups.append({"params": params, "lr": unit_lr, "name": name})
            continue
        if decay:
            groups.append({"params": decay, "lr": unit_lr, "name": name})
        if flat:
            groups.append({"params": flat, "lr": unit_lr, "name": f"{name}.no_decay", "weight_decay": 0.0})
    weights, biases = _split_decay(net.head)
    groups.append({"params": weights, "lr": float(o["head_weight_lr"]), "name": "head_weight"})
    bias = {"params": biases, "lr": float(o["head_bias_lr"]), "name": "head_bias"}
    if not decay_all:
        bias["weight_decay"] = 0.0
    groups.append(bias)
    return groups


def build_optimizer(net: nn.Module, o: dict, total_steps: int) -> dict:
    """``configure_optimizers``' answer: the optimiser over :func:`parameter_groups` and its schedule.

    ``o`` is the resolved ``optim`` config: ``optimizer`` and ``scheduler`` are partials;
    ``interval`` says whether the scheduler steps every ``epoch`` or every ``step``.
    ``total_steps`` (the run's optimiser steps) reaches schedulers that take it.
    """
    opt = build(o["optimizer"], _partial_=True)(parameter_groups(net, o), lr=float(o["lr"]))
    answer: dict[str, Any] = {"optimizer": opt}
    if o.get("scheduler"):
        make = build(o["scheduler"], _partial_=True)
        target = getattr(make, "func", make)
        params = inspect.signature(target).parameters
        sched = make(opt, total_steps=int(total_steps)) if "total_steps" in params else make(opt)
        answer["lr_scheduler"] = {"scheduler": sched, "interval": str(o.get("interval", "epoch"))}
    return answer
