"""Reading checkpoints safely and checking they fit the data they are used with."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ser.errors import SerError
from ser.models.weights import torch_load_untrusted


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint loaded without running pickled code (``weights_only=True``)."""
    ckpt = torch_load_untrusted(
        path, "Checkpoint",
        not_found_hint="Pass the path of a .ckpt file written by train.py "
                       "(run_dir/checkpoints/last.ckpt or best-*.ckpt).",
        refused_hint="Only checkpoints written by ser's train.py are accepted.",
        unreadable_hint="Use another checkpoint of the run, e.g. last.ckpt.")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise SerError(f"{path} is not a checkpoint written by ser's train.py (it lacks the "
                       "state_dict / hyper_parameters entries).")
    return ckpt


def check_classes(ckpt_classes: Sequence[str], data_classes: Sequence[str], path: str | Path) -> None:
    if list(ckpt_classes) != list(data_classes):
        raise SerError(f"Checkpoint {path} was trained on classes {list(ckpt_classes)}, but the "
                       f"dataset gives {list(data_classes)}. Use a checkpoint trained on this class "
                       "set, or pick the dataset it was trained on (e.g. dataset=ahsn vs aesn).")
