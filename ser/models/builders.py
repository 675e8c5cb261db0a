"""Config groups -> modules: the network (``model``) and the front-end (``features``).

Both are rebuilt from a checkpoint's hyper-parameters alone (brought to today's form where the
checkpoint is read, :func:`ser.models.checkpoints.trained_hyper_parameters`), by the one builder
:func:`ser.configs.build`, which needs no Hydra: the light inference path starts without it.
"""

from __future__ import annotations

import inspect

from torch import nn

from ser.configs import build, locate
from ser.errors import SerError
from ser.models.calibration import Calibrator
from ser.models.network import MEMBERS, Network


def build_frontend(features: dict, channels_last: bool = False) -> nn.Module:
    """``features`` config -> the waveform-to-input module its ``_target_`` names
    (``features=logmel``, ``features=paper``, ``features=waveform``)."""
    given = {}
    if "channels_last" in inspect.signature(locate(features["_target_"])).parameters:
        given["channels_last"] = channels_last  # front-ends that can write it directly
    return build(features, **given)


def build_calibration(node: dict | None, num_classes: int) -> nn.Module | None:
    """``calibration`` config -> the layer its ``_target_`` names (:mod:`ser.models.calibration`),
    or None for ``calibration=none``, an empty node, or a checkpoint from before calibration."""
    if not node or not node.get("_target_"):
        return None
    layer = build(node, num_classes=num_classes)
    if not isinstance(layer, nn.Module) or not isinstance(layer, Calibrator):
        raise SerError(f"calibration._target_ {node['_target_']} built a {type(layer).__name__}, which is not "
                       "an nn.Module with fit(logits, labels), describe() and a `fitted` buffer (the "
                       "Calibrator protocol, ser/models/calibration.py).")
    return layer


def build_network(model: dict, num_classes: int) -> nn.Module:
    """``model`` config -> the network its ``_target_`` builds (called with ``num_classes`` and
    the file's keys): an ImageNet CNN (:func:`ser.models.backbones.alexnet`,
    :func:`ser.models.efficientnet.efficientnet_lite0`) or a speech encoder
    (:func:`ser.models.speech_net.build_speech_encoder_net`)."""
    net = build(model, num_classes=num_classes)
    if not isinstance(net, Network):
        missing = [m for m in MEMBERS if not hasattr(net, m)]
        raise SerError(f"model._target_ {model.get('_target_')} built a {type(net).__name__}, which "
                       f"lacks {', '.join(missing)} of the Network protocol (ser/models/network.py): "
                       "a network splits into a frozen trunk, a trained tail and a head, and lists "
                       "its fine-tuned stages. Wrap it, as ser.models.transfer.TransferNet does.")
    return net
