"""Reading checkpoints safely and checking they fit the data they are used with."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import torch

from ser.errors import SerError


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint loaded without running pickled code (``weights_only=True``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SerError(f"Checkpoint not found: {path}. Pass the path of a .ckpt file written by "
                       "train.py (run_dir/checkpoints/last.ckpt or best-*.ckpt).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SerError(f"Refusing to load checkpoint {path}: it holds pickled objects other than "
                       f"tensors and plain values ({str(exc).splitlines()[0]}), which could run code. "
                       "Only checkpoints written by ser's train.py are accepted.") from exc
    except Exception as exc:
        raise SerError(f"Cannot read checkpoint {path}: {type(exc).__name__}: {exc}. The file is "
                       "not a PyTorch checkpoint or was truncated (a copy or a run killed while "
                       "writing it); use another checkpoint, e.g. last.ckpt.") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise SerError(f"{path} is not a checkpoint written by ser's train.py (it lacks the "
                       "state_dict / hyper_parameters entries).")
    return ckpt


def check_classes(ckpt_classes: Sequence[str], data_classes: Sequence[str], path: str | Path) -> None:
    if list(ckpt_classes) != list(data_classes):
        raise SerError(f"Checkpoint {path} was trained on classes {list(ckpt_classes)}, but the "
                       f"dataset gives {list(data_classes)}. Use a checkpoint trained on this class "
                       "set, or pick the dataset it was trained on (e.g. dataset=ahsn vs aesn).")
