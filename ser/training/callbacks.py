"""A run's Lightning callbacks, built from the ``callbacks`` config group (conf/callbacks/).

Each entry of the group is a callback's ``_target_`` and arguments; an entry set to null is
left out, and a new callback is one more entry (``+callbacks.swa._target_=...``). Two entries
are the run's contract rather than a choice: ``best_checkpoint`` (what the test sets score)
and ``last_checkpoint`` (what resume starts from). They are given the run's checkpoint folder,
and last.ckpt the trainer's validation schedule, here. A callback that reports to a tracker
(Lightning's ``LearningRateMonitor``) is left out of a run without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor

from ser.configs import build
from ser.errors import SerError
from ser.training.checkpoint_callbacks import BestCheckpoint, LastCheckpoint
from ser.training.resources import MemoryMonitor

RUN_CONTRACT = ("best_checkpoint", "last_checkpoint")
NEEDS_A_TRACKER = (LearningRateMonitor,)


def early_stopping(monitor: str = "val/ua", mode: str = "max", patience: int | None = None
                   ) -> EarlyStopping | None:
    """``callbacks.early_stopping``: stop after ``patience`` validation checks without
    improvement of ``monitor`` (``select.*``); None never stops early. ``trainer.min_steps``
    holds the stop back on small corpora. Checked at validation, not at an epoch's end, so a
    budget in steps stops where it validated."""
    if patience is None:
        return None
    return EarlyStopping(monitor=str(monitor), mode=str(mode), patience=int(patience),
                         check_on_train_epoch_end=False)


def validation_steps(trainer: DictConfig) -> int | None:
    """Optimiser steps between validations when the budget is in steps (``val_check_interval``
    an integer and no per-epoch check), else None (validation per epoch)."""
    interval = trainer.get("val_check_interval")
    by_steps = trainer.get("check_val_every_n_epoch") is None and isinstance(interval, int) \
        and not isinstance(interval, bool)
    return int(interval) if by_steps else None


@dataclass
class RunCallbacks:
    """The built callbacks, with the ones the runner reads after training named."""

    best: BestCheckpoint
    last: LastCheckpoint
    stop: EarlyStopping | None = None
    memory: MemoryMonitor | None = None
    others: list[Callback] = field(default_factory=list)

    @property
    def all(self) -> list[Callback]:
        extra = [c for c in (self.memory, self.stop) if c is not None]
        return [self.best, self.last, *extra, *self.others]


def build_callbacks(nodes: DictConfig | dict | None, ckpt_dir: Path, trainer: DictConfig,
                    has_tracker: bool) -> RunCallbacks:
    """The callbacks of ``nodes`` (``cfg.callbacks``) for a run writing checkpoints to
    ``ckpt_dir`` under the (step-budgeted) ``trainer`` config."""
    entries: dict[str, Any] = {k: v for k, v in dict(nodes or {}).items() if v is not None}
    missing = [name for name in RUN_CONTRACT if name not in entries]
    if missing:
        raise SerError(f"callbacks.{missing[0]} is missing: a run tests its best checkpoint and "
                       "resumes from last.ckpt; keep both entries of conf/callbacks/default.yaml.")
    best = build(entries.pop("best_checkpoint"), dirpath=str(ckpt_dir))
    last = build(entries.pop("last_checkpoint"), dirpath=str(ckpt_dir),
                 validation_steps=validation_steps(trainer))
    built = [build(node) for node in entries.values()]
    built = [c for c in built if c is not None and (has_tracker or not isinstance(c, NEEDS_A_TRACKER))]
    stop = next((c for c in built if isinstance(c, EarlyStopping)), None)
    memory = next((c for c in built if isinstance(c, MemoryMonitor)), None)
    others = [c for c in built if c is not stop and c is not memory]
    return RunCallbacks(best, last, stop, memory, others)
