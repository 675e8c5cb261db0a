"""Config groups -> modules: the network (``model``) and the front-end (``features``).

Both are rebuilt from a checkpoint's hyper-parameters alone, so they are made here from plain
dicts rather than by Hydra's ``instantiate`` on the live config.
"""

from __future__ import annotations

import importlib
import inspect

from torch import nn

from ser.features.spectrogram import SpectrogramImage
from ser.errors import SerError
from ser.models.backbones import build_backbone


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
    """``features`` config -> the waveform-to-input module: its ``_target_`` (``features=logmel``,
    ``features=paper``), or the paper's spectrogram image for configs that predate ``_target_``."""
    features = dict(features)
    target = features.pop("_target_", None)
    if target is None:
        return SpectrogramImage(**features)
    cls = import_target(target)
    if "channels_last" in inspect.signature(cls).parameters:  # front-ends that can write it directly
        features["channels_last"] = channels_last
    return cls(**features)


def build_network(model: dict, num_classes: int) -> nn.Module:
    """``model`` config -> the network: its ``_target_`` builder (the speech encoders,
    :func:`ser.models.speech_net.build_speech_encoder_net`) or an ImageNet CNN from
    :func:`ser.models.backbones.build_backbone` (``name`` + ``trainable_from``)."""
    if model.get("_target_"):
        options = {k: v for k, v in model.items() if k != "_target_"}
        return import_target(model["_target_"])(num_classes=num_classes, **options)
    return build_backbone(model["name"], num_classes, model.get("pretrained", False),
                          model["trainable_from"], int(model.get("trunk_chunk", 32)))
