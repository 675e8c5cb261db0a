"""The run's two checkpoint callbacks (conf/callbacks/): the best by validation, and last.ckpt.

:class:`LastCheckpoint` also saves when training ends, so every run that took a step leaves a
``last.ckpt`` (a run that ends before its first validation too) that resume and
``evaluate.py ckpt=RUN`` can use.

:class:`BestCheckpoint` is mended on resume when the file it recorded is gone. A run killed between two saves (the new best written and the old one removed, then killed
before ``last.ckpt`` was replaced) resumes from a ``last.ckpt`` whose record names a best
checkpoint that no longer exists. Lightning would train on, then fail at
``trainer.test(ckpt_path="best")`` with a traceback. :class:`BestCheckpoint` checks the record
against the disk when it is restored and falls back to the best checkpoint that does exist,
saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from ser.run_layout import BEST_GLOB, LAST_NAME, best_checkpoint_filename


def stored_score(path: Path) -> float | None:
    """The monitored score a best checkpoint was saved with (its own callback record), or None
    when the file cannot be read. The file is memory-mapped: only the small record is read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    for key, value in (state.get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint"):
            score = value.get("best_model_score") if isinstance(value, dict) else None
            if score is not None and value.get("best_model_path", "") and Path(value["best_model_path"]).name == path.name:
                return float(score)
    return None


class BestCheckpoint(ModelCheckpoint):
    """:class:`ModelCheckpoint` keeping the ``save_top_k`` best by its monitor, whose restored
    record is checked against the files on disk (see the module docstring)."""

    def _generate_state_key(self, **kwargs: Any) -> str:
        # ModelCheckpoint's key: checkpoints written before this class existed restore into it
        return f"ModelCheckpoint{kwargs!r}"

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        recorded = self.best_model_path
        if not recorded or Path(recorded).is_file():
            return
        self.best_k_models = {p: s for p, s in self.best_k_models.items() if Path(p).is_file()}
        on_disk = {}
        for path in sorted(Path(self.dirpath or Path(recorded).parent).glob(BEST_GLOB)):
            score = self.best_k_models.get(str(path))
            score = float(score) if score is not None else stored_score(path)
            if score is not None:
                on_disk[str(path)] = score
        if not on_disk:
            print(f"The best checkpoint recorded in last.ckpt ({Path(recorded).name}) is gone and no "
                  "other best checkpoint exists: training goes on and the next validation picks one.",
                  flush=True)
            self.best_k_models, self.best_model_path, self.best_model_score = {}, "", None
            self.kth_best_model_path, self.kth_value = "", self.kth_value.new_tensor(
                float("-inf") if self.mode == "max" else float("inf"))
            return
        pick = max if self.mode == "max" else min
        path = pick(on_disk, key=on_disk.get)
        self.best_k_models = {p: torch.tensor(s) for p, s in on_disk.items()}
        self.best_model_path, self.best_model_score = path, torch.tensor(on_disk[path])
        worst = min if self.mode == "max" else max
        self.kth_best_model_path = worst(on_disk, key=on_disk.get)
        self.kth_value = torch.tensor(on_disk[self.kth_best_model_path])
        print(f"The best checkpoint recorded in last.ckpt ({Path(recorded).name}) is gone (the run "
              f"stopped between two saves); using {Path(path).name}, the best one on disk "
              f"({self.monitor} {on_disk[path]:.4f}).", flush=True)


class LastCheckpoint(ModelCheckpoint):
    """last.ckpt, refreshed every ``every_n_train_steps`` (or epoch) and when training ends,
    unless that step was saved already."""

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if trainer.global_step > 0 and not self._should_skip_saving_checkpoint(trainer):
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))


def best_checkpoint(dirpath: str, monitor: str = "val/ua", mode: str = "max") -> BestCheckpoint:
    """``callbacks.best_checkpoint``: the checkpoint the test sets score, by ``monitor``
    (``select.monitor``; the paper's experiments keep val/weighted_f1), in the run's
    ``dirpath``; its file name carries the step and the score (``best-step120-ua0.8125``)."""
    return BestCheckpoint(dirpath=str(dirpath), filename=best_checkpoint_filename(monitor),
                          monitor=str(monitor), mode=str(mode), auto_insert_metric_name=False)


def last_checkpoint(dirpath: str, validation_steps: int | None = None,
                    every_n_steps: int | None = None) -> LastCheckpoint:
    """``callbacks.last_checkpoint``: last.ckpt in the run's ``dirpath``, what resume starts from.

    Lightning's ``save_last`` only refreshes last.ckpt when the best one improves; resuming needs
    the latest state, so last.ckpt is its own callback: every ``every_n_steps`` optimiser steps
    when given, else at each validation of a step budget (``validation_steps``, from the
    trainer), else every epoch; and when training ends."""
    every = int(every_n_steps or validation_steps or 0)
    return LastCheckpoint(dirpath=str(dirpath), filename=LAST_NAME, monitor=None, save_top_k=1,
                          enable_version_counter=False,
                          **({"every_n_train_steps": every} if every
                             else {"every_n_epochs": 1, "save_on_train_epoch_end": True}))
