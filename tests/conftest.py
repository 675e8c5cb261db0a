"""Shared test setup: a private cache, W&B offline, and composing the real Hydra configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never touch the user's cache or the network.
os.environ.setdefault("SER_CACHE", str(Path(os.environ.get("PYTEST_SER_CACHE", "/tmp")) / f"ser-test-cache-{os.getuid()}"))
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist (`-n 2`) each worker and the commands it starts use one thread: two
# workers on two cores, each with as many threads as cores, would wait on each other's threads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

# The test session is a command like train.py: the same allocator settings and warning filters.
from ser.cli import prepare_process  # noqa: E402

prepare_process()


def pytest_configure(config):
    """Under pytest-xdist the controlling process only hands out tests: it gives back the
    cores it registered, so a training beside the suite counts the workers alone."""
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        from ser.cores import release

        release()

# Small but real: the tiny-run overrides every training test starts from.
FAST = ["model.pretrained=false", "trainer=epochs", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "data.batch_size=8",
        "trainer.enable_progress_bar=false"]


def compose(overrides: list[str]):
    """The config train.py would see for ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def run_script(script: str, args: list[str], cwd: Path, timeout: int = 600):
    """Run an entry point as a user would, in a subprocess; returns CompletedProcess."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(REPO), HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA
