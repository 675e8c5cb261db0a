"""Faults while a checkpoint is written, done for real in a subprocess: the process dies between
writing a checkpoint and renaming it into place, and the disk fills up (the kernel's file size
limit, so every write past it fails with EFBIG) while one is written."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import FAST, REPO, run_script

ARGS = [*FAST, "trainer.max_epochs=3", "logger=none"]

# train.py as a user runs it, with one hook installed first (the fault), then Hydra's main.
HARNESS = """
import os, runpy, sys
sys.argv = [{train!r}, *sys.argv[1:]]
{hook}
runpy.run_path({train!r}, run_name="__main__")
"""

# os.replace is how ser.atomic puts a written file in place: dying just before it leaves the
# complete temporary file and the previous last.ckpt.
DIE_BEFORE_SECOND_RENAME = """
import ser.atomic
renames = []
def replace(src, dst, _replace=os.replace):
    if str(dst).endswith("last.ckpt"):
        renames.append(dst)
        if len(renames) == 2:
            os._exit(9)
    _replace(src, dst)
ser.atomic.os = type(sys)("os_with_fault")
ser.atomic.os.__dict__.update(os.__dict__)
ser.atomic.os.replace = replace
"""

# Whether validation improves decides which best checkpoints exist when the run dies, and that
# depends on the machine's arithmetic: the tests fix it. Every check improves in the killed run,
# so best-step4 replaces best-step2 before the kill; none improves in the resumed one, so the
# best recorded in the epoch-0 last.ckpt (best-step2, removed) would stay the one to test.
ALWAYS_IMPROVES = """
from pytorch_lightning.callbacks import ModelCheckpoint
ModelCheckpoint.check_monitor_top_k = lambda self, trainer, current=None: True
"""
NEVER_IMPROVES = """
from pytorch_lightning.callbacks import ModelCheckpoint
ModelCheckpoint.check_monitor_top_k = lambda self, trainer, current=None: False
"""

# After the first epoch's two checkpoints, files may not grow past 64 KiB: the next checkpoint
# write fails as on a full disk (SIGXFSZ ignored, so write() returns EFBIG instead of killing).
DISK_FULL_AFTER_FIRST_EPOCH = """
import resource, signal
from ser.training.checkpoint_io import AtomicCheckpointIO
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
saves = []
original = AtomicCheckpointIO.save_checkpoint
def save_checkpoint(self, checkpoint, path, storage_options=None):
    if len(saves) == 2:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    saves.append(path)
    original(self, checkpoint, path, storage_options)
AtomicCheckpointIO.save_checkpoint = save_checkpoint
"""


def with_fault(hook: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = HARNESS.format(train=str(REPO / "train.py"), hook=hook)
    env = dict(os.environ, PYTHONPATH=str(REPO), HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def temporaries(folder: Path) -> list[Path]:
    return list(folder.glob(".*.tmp"))


@pytest.mark.slow
def test_killed_between_write_and_rename_resumes_from_the_previous_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*ARGS, f"hydra.run.dir={run_dir}"]
    killed = with_fault(DIE_BEFORE_SECOND_RENAME + ALWAYS_IMPROVES, args, tmp_path)
    assert killed.returncode == 9, killed.stderr[-3000:]
    ckpts = run_dir / "checkpoints"
    last = ckpts / "last.ckpt"
    assert temporaries(ckpts), "the fault should leave the unrenamed checkpoint behind"
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0  # the good one
    assert [p.name.split("-")[1] for p in ckpts.glob("best-*.ckpt")] == ["step4"]  # step2's is gone
    resumed = with_fault(NEVER_IMPROVES, [*args, "resume=true"], tmp_path)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert "Removed .last.ckpt." in out and f"Resuming from {last}" in out
    assert "best-step2" in out and "is gone" in out and "using best-step4" in out
    # the remaining epochs were trained, and the best checkpoint on disk was tested
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3 * 2
    record = json.loads((run_dir / "run.json").read_text())
    assert record["training"]["steps"] == 6
    assert record["training"]["selected"]["checkpoint"].startswith("best-step4")
    assert record["generalisation"]["validation_ua"] == record["training"]["selected"]["score"]
    assert not temporaries(ckpts) and (run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_a_full_disk_while_writing_a_checkpoint_gives_one_error_and_keeps_the_previous(tmp_path):
    run_dir = tmp_path / "run"
    result = with_fault(DISK_FULL_AFTER_FIRST_EPOCH, [*ARGS, f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    message = " ".join(result.stderr.split())
    assert message.count("error:") == 1 and "Traceback" not in result.stderr
    assert "Could not write" in message and "no room for it (File too large)" in message
    assert "resume=true" in message
    last = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)  # whole, from epoch 0
    assert state["epoch"] == 0 and state["global_step"] == 2
    assert not temporaries(last.parent) and not (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_a_run_that_ends_before_its_first_validation_leaves_last_ckpt_and_evaluates(tmp_path):
    # the default step budget validates every 100 steps; one epoch of 2 batches ends before it
    run_dir = tmp_path / "run"
    args = [a for a in FAST if not a.startswith("trainer=")] + ["trainer.max_epochs=1", "logger=none",
                                                                f"hydra.run.dir={run_dir}"]
    result = run_script("train.py", args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "weights tested: the final weights, step 2" in result.stdout
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2
    record = json.loads((run_dir / "run.json").read_text())
    assert record["training"]["steps"] == 2 and record["training"]["selected"]["checkpoint"] is None
    evaluated = run_script("evaluate.py", [f"ckpt={run_dir}", f"out_dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    got = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["metrics"]
    assert got["clean"]["confusion_matrix"] == metrics["clean"]["confusion_matrix"]


def test_a_resumed_runs_best_from_before_the_resume_keeps_its_validation_ua():
    """The validation that chose the best checkpoint may predate a resume (this process never
    saw it): its score is still its UA where it monitors val/ua, and nothing is made up for
    another monitor."""
    from ser.training.runner import selected_validation

    assert selected_validation(None, 0.7, "val/ua") == {"ua": 0.7}
    assert selected_validation({"step": 3, "ua": 0.7, "ua_shared_text": 0.5}, 0.7, "val/ua")["ua_shared_text"] == 0.5
    assert selected_validation(None, 0.5, "val/ua_shared_text") == {}
    assert selected_validation({"ua": 0.75, "ua_shared_text": 0.5}, 0.5, "val/ua_shared_text")["ua"] == 0.75


# Early stopping decides at the first validation that the run should stop.
STOPS_AT_FIRST_VALIDATION = """
from pytorch_lightning.callbacks import EarlyStopping
EarlyStopping._evaluate_stopping_criteria = lambda self, current: (True, "told to stop")
"""


@pytest.mark.slow
def test_a_run_that_early_stopping_ended_says_so_in_run_json(tmp_path):
    """The calibration and test passes load the best checkpoint, which restores the callbacks'
    state as it was then (not stopped): run.json must still say the run stopped early."""
    run_dir = tmp_path / "run"
    args = [*FAST, "trainer.max_epochs=3", "logger=csv", f"hydra.run.dir={run_dir}"]
    result = with_fault(STOPS_AT_FIRST_VALIDATION, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["training"]["steps"] == 2 and record["training"]["stopped_early"] is True
    # the calibration's validation pass (the part plus its noisy copies) is no validation check:
    # the logged val/ua is the one check training made
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert [r["step"] for r in rows if r.get("val/ua")] == ["1"]
