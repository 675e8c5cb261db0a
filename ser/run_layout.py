"""What a run directory holds, by name: the one place train.py, the baseline, evaluate.py and
the sweep summary read the layout from.

::

    <run>/metrics.json            test metrics per test set (written last: a finished run has it)
    <run>/run.json                choices, version, commit, data fingerprint, steps taken
    <run>/config.yaml             the resolved config
    <run>/split.csv               one row per utterance and part: which fold tested what
    <run>/predictions.csv         every test block's class probabilities, per test set
    <run>/checkpoints/last.ckpt   the latest state, for resume=true
    <run>/checkpoints/best-step<step>-<metric><score>.ckpt   the state the test sets scored
    <run>/checkpoints/baseline.pkl                           model=mfcc_svm's fitted estimator
    <run>/evaluation/<checkpoint>[,changes]/                 what evaluate.py ckpt= writes
"""

from __future__ import annotations

from pathlib import Path

from ser.atomic import TEMP_SUFFIX

METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.csv"
PREDICTIONS_FILE = "predictions.csv"
CHECKPOINT_DIR = "checkpoints"
LAST_NAME = "last"                 # Lightning adds the .ckpt
LAST_CHECKPOINT = f"{LAST_NAME}.ckpt"
BEST_GLOB = "best-*.ckpt"
BASELINE_FILE = "baseline.pkl"
EVALUATION_DIR = "evaluation"


def best_checkpoint_filename(monitor: str) -> str:
    """Lightning's ``filename`` template of the best checkpoint: ``best-step120-ua0.8125``."""
    short = monitor.split("/")[-1].replace("weighted_f1", "wf1")
    return f"best-step{{step}}-{short}{{{monitor}:.4f}}"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def last_checkpoint(run_dir: str | Path) -> Path:
    return checkpoint_dir(run_dir) / LAST_CHECKPOINT


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete what a killed writer left in ``folder`` (``.<name>.<random>.tmp``, see
    :mod:`ser.atomic`); only call this where no other process is writing."""
    stale = sorted(Path(folder).glob(f".*{TEMP_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def run_dir_of(file: str | Path) -> Path:
    """The run directory a checkpoint (or baseline pickle) belongs to."""
    file = Path(file)
    return file.parent.parent if file.parent.name == CHECKPOINT_DIR else file.parent
