"""Reproducible runs, secrets kept out of run directories, launcher configs for parallel sweeps."""

import json
import os

import pytest

from tests.conftest import FAST, compose, run_script

PLANTED_KEY = "local-0123456789abcdef0123456789abcdef01234567"


def test_same_seed_same_metrics_and_no_api_key_in_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", PLANTED_KEY)  # credentials present, but the run is offline
    runs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        result = run_script("train.py", [*FAST, "logger=wandb", "logger.mode=offline",
                                         f"hydra.run.dir={run_dir}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(run_dir)
    first, second = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert first == second  # same seed, same folds, same noisy test sets, same CPU metrics
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["memory_per_epoch"] and record["memory_per_epoch"][0]["peak_rss_mb"] > 0
    assert record["version"] and "per_class" in record["data_fingerprint"]
    for path in runs[0].rglob("*"):
        if path.is_file():
            assert PLANTED_KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"


@pytest.mark.parametrize("launcher, target", [("parallel", "JoblibLauncher"), ("slurm", "SlurmLauncher")])
def test_sweep_launcher_configs_compose(launcher, target):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=[f"hydra/launcher={launcher}"],
                            return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.timeout_min > 0
