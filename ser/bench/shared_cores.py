"""(k) Two trainings sharing the machine: seconds per optimiser step of one run alone (with
OpenMP's default wait, ser's choice alone, and with waiting threads asleep at once,
``OMP_WAIT_POLICY=PASSIVE``), then of two started side by side with the old thread choice (each
takes every usable core; waiting threads spinning, then asleep) and with ser's (each its share
of the cores, :mod:`ser.cores`). Each run is ``train.py`` on the demo corpus for ``steps``
optimiser steps, timed by the run itself (the ``Training speed`` line, steps after the first
ten)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ser.cores import release, usable_cores

SPEED = re.compile(r"Training speed: ([0-9.]+) s per optimiser step")


def _start(out: Path, steps: int, old: bool, wait: str = "") -> subprocess.Popen:
    """``old``: every usable core, as torch chooses; ``wait``: the OpenMP wait policy (``""``:
    OpenMP's default, unless ser chooses one)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    if wait:
        env["OMP_WAIT_POLICY"] = wait
    args = [sys.executable, "train.py", "logger=none", f"trainer.max_steps={steps}", "trainer.min_steps=0",
            "trainer.limit_test_batches=1", "trainer.val_check_interval=1000", f"hydra.run.dir={out}"]
    if old:  # torch's own choice: a thread per usable core, and OpenMP's default wait
        env.setdefault("OMP_WAIT_POLICY", "")
        args.append(f"threads={usable_cores()}")
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _speed(process: subprocess.Popen) -> float:
    out, _ = process.communicate()
    found = SPEED.findall(out)
    if process.returncode or not found:
        raise RuntimeError(f"a training run of the bench failed:\n{out[-2000:]}")
    return float(found[-1])


def shared_core_figures(steps: int = 120) -> list[str]:
    """The figures part (k) prints (run from the project folder, which holds train.py). The
    bench itself only waits meanwhile, so it gives up its own share of the cores first."""
    release()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        alone = _speed(_start(root / "alone", steps, old=False))
        asleep = _speed(_start(root / "asleep", steps, old=False, wait="PASSIVE"))
        lines = [f"(k) training alone: {alone:.3f} s/step ({usable_cores()} usable cores; "
                 f"{asleep:.3f} with waiting threads asleep at once, OMP_WAIT_POLICY=PASSIVE)"]
        for i, (name, old, wait) in enumerate((("old thread choice, waiting threads spin", True, ""),
                                               ("old thread choice, waiting threads asleep", True, "PASSIVE"),
                                               ("ser's thread choice", False, ""))):
            pair = [_start(root / f"pair{i}-{j}", steps, old, wait) for j in range(2)]
            speeds = [_speed(p) for p in pair]
            lines.append(f"(k) two side by side, {name}: " + ", ".join(f"{s:.3f}" for s in speeds)
                         + f" s/step, {max(speeds) / alone:.1f}x the time alone")
    return lines
