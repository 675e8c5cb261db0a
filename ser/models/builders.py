"""Config groups -> modules: the network (``model``) and the front-end (``features``).

Both are rebuilt from a checkpoint's hyper-parameters alone, so they are made here from plain
dicts rather than by Hydra's ``instantiate`` on the live config. A checkpoint's config from
before every group had a ``_target_`` is upgraded first (:mod:`ser.config_upgrade`).
"""

from __future__ import annotations

import importlib
import inspect

from torch import nn

from ser.config_upgrade import with_target
from ser.errors import SerError


def import_target(dotted: str):
    """The class or function a ``_target_`` names (``package.module.Name``).

    Plain importlib rather than Hydra's ``get_class``: checkpoints are rebuilt by the light
    inference path (``ser.predict``, ``ser.serve``), which must start without importing Hydra.
    """
    module_name, _, attr = str(dotted).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SerError(f"_target_ {dotted!r} names nothing importable ({type(exc).__name__}: "
                       f"{exc}); the checkpoint or config is from another version of ser.") from exc


def build_frontend(features: dict, channels_last: bool = False) -> nn.Module:
    """``features`` config -> the waveform-to-input module its ``_target_`` names
    (``features=logmel``, ``features=paper``, ``features=waveform``)."""
    features = with_target("features", features)
    cls = import_target(features.pop("_target_"))
    if "channels_last" in inspect.signature(cls).parameters:  # front-ends that can write it directly
        features["channels_last"] = channels_last
    return cls(**features)


def build_network(model: dict, num_classes: int) -> nn.Module:
    """``model`` config -> the network its ``_target_`` builds (called with ``num_classes`` and
    the file's keys): an ImageNet CNN (:func:`ser.models.backbones.alexnet`,
    :func:`ser.models.efficientnet.efficientnet_lite0`) or a speech encoder
    (:func:`ser.models.speech_net.build_speech_encoder_net`)."""
    options = with_target("model", model)
    target = options.pop("_target_")
    if not target:
        raise SerError(f"model={model.get('name')} names no `_target_`: a file in conf/model/ says "
                       "which function builds the network, e.g. conf/model/alexnet.yaml.")
    return import_target(target)(num_classes=num_classes, **options)
