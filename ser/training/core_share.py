"""A callback that keeps a training run's threads at its share of the cores as other ser
processes start and end (:func:`ser.cores.rebalance`, checked every ``every`` optimiser steps),
and says at the end how long a step took: the figure that shows whether runs sharing a machine
slow each other down (``ser-bench parts=k``).

It also keeps every thread count the run trained with (``thread_counts``, run.json's
``training.threads``): torch splits its sums by thread, so a run whose share changed while it
trained adds in another order than a run on fixed threads, and its metrics may differ from
another run at the same seed in the last digits. ``threads=N`` holds the count fixed."""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch

from ser.cores import rebalance

WARM_UP_STEPS = 10   # the first steps build caches and allocator pools: not timed


class CoreShare(pl.Callback):
    def __init__(self, every: int = 20) -> None:
        self.every = int(every)
        self.started: tuple[int, float] | None = None
        self.steps: tuple[int, float] | None = None
        self.thread_counts: set[int] = set()

    def on_train_start(self, trainer, pl_module) -> None:
        self.thread_counts.add(torch.get_num_threads())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, now = int(trainer.global_step), time.perf_counter()
        if self.started is None and step >= min(WARM_UP_STEPS, max(1, int(trainer.max_steps or 0) // 2)):
            self.started = (step, now)
        self.steps = (step, now)
        if step % self.every == 0:
            changed = rebalance()
            if changed is not None:
                self.thread_counts.add(int(changed))
                print(f"Threads: now {changed} intra-op (the cores' share as ser processes started or ended).",
                      flush=True)

    def seconds_per_step(self) -> float | None:
        if self.started is None or self.steps is None or self.steps[0] <= self.started[0]:
            return None
        return (self.steps[1] - self.started[1]) / (self.steps[0] - self.started[0])

    def on_train_end(self, trainer, pl_module) -> None:
        per_step = self.seconds_per_step()
        if per_step is not None:
            print(f"Training speed: {per_step:.3f} s per optimiser step (steps {self.started[0]}-{self.steps[0]}, "
                  f"{torch.get_num_threads()} intra-op threads at the end)", flush=True)
        if len(self.thread_counts) > 1:
            print(f"Threads changed while training ({', '.join(map(str, sorted(self.thread_counts)))}): "
                  "the metrics may differ in the last digits from a run at the same seed on fixed "
                  "threads (threads=N fixes them).", flush=True)
