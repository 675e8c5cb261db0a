"""Loading ImageNet weights without ever falling back to random ones silently.

Weights files shared by others are untrusted: they are read with ``weights_only=True`` so a
crafted pickle is refused instead of executed.
"""

from __future__ import annotations

import os

import pickle
import socket
from pathlib import Path

import torch

from ser.errors import SerError


def torch_load_untrusted(path: str | Path, what: str, not_found_hint: str, refused_hint: str,
                         unreadable_hint: str) -> object:
    """``torch.load`` with ``weights_only=True``, every failure turned into one clear paragraph.

    ``what`` names the file for the user ("Weights file", "Checkpoint"); the hints say what to do.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise SerError(f"{what} not found: {path}. {not_found_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SerError(f"Refusing to load {what.lower()} {path}: it holds pickled objects other than "
                       f"tensors and plain values ({str(exc).splitlines()[0]}), which could run "
                       f"code. {refused_hint}") from exc
    except Exception as exc:
        raise SerError(f"Cannot read {what.lower()} {path}: {type(exc).__name__}: {exc}. It is not a "
                       f"PyTorch file, or it was truncated while being copied or written. "
                       f"{unreadable_hint}") from exc


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` safely; accepts a bare state dict or {"state_dict": ...}."""
    obj = torch_load_untrusted(
        path, "Weights file",
        not_found_hint="`model.pretrained` must be true, false or the path of an existing "
                       "state-dict file (.pth/.pt).",
        refused_hint="Only state-dict files made of tensors are accepted; re-save it with "
                     "torch.save(model.state_dict(), PATH).",
        unreadable_hint="Pass a state-dict file saved with torch.save(model.state_dict(), PATH).")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SerError(f"Weights file {path} does not hold a state dict (a mapping of parameter "
                       "names to tensors).")
    return obj


def load_hub_weights(url: str, file_name: str, timeout_s: float = 30.0) -> dict[str, torch.Tensor]:
    """torchvision's weights from the torch hub cache, downloading them when the network allows.

    The socket timeout keeps an offline machine from hanging on the download; the error then
    tells the user the exact file to place in the cache, or to pass it by path.
    """
    cache = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    if cache.is_file():
        return load_state_dict_file(cache)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False,
                                                  weights_only=True)
    except Exception as exc:
        raise SerError(
            f"Could not load the ImageNet weights {file_name}: they are not in the torch hub cache "
            f"({cache}) and downloading them from {url} failed ({type(exc).__name__}: {exc}). "
            f"Copy {file_name} into {cache.parent}, or pass its path with "
            f"`model.pretrained=/path/to/{file_name}`, or train from random weights on purpose "
            "with `model.pretrained=false`."
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def pretrained_choice(value: bool | str | os.PathLike | None) -> bool | str | os.PathLike:
    """``model.pretrained`` as True (the built-in source), False (random weights on purpose) or
    the path / id it names: ``true``/``false``/``none``/``null``/empty as YAML or the command
    line spell them, any case."""
    flag = value.strip().lower() if isinstance(value, str) else value
    if flag in (False, None, "false", "none", "null", ""):
        return False
    if flag in (True, "true"):
        return True
    return value.strip() if isinstance(value, str) else value
