"""The faults of shared machines, for real: parallel sweep jobs starting at once on an empty
cache, and a sweep through Hydra's submitit launcher (its local executor: the path a SLURM user
takes, without a cluster) with one job killed and the sweep resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ser.cache_files import SUM_SUFFIX, damage
from tests.conftest import FAST, REPO

# Two tiny jobs on a small demo corpus (24 utterances), so that building the caches is a real
# share of each job and the two builds overlap.
# Job folders named by the swept key alone: all of these overrides would make a name too long.
TINY = [*FAST, "logger=none", "+dataset.reader.n_speakers=2", "+dataset.reader.utterances_per_class=3",
        "hydra.sweep.subdir=snr-${snr}"]


def train(args: list[str], cwd: Path, cache: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # One thread per job, as joblib gives each of 2 workers on 2 cores: the float sums of a
    # convolution depend on how many threads share them, and a 2-step run's predictions with them.
    env = dict(os.environ, PYTHONPATH=str(REPO), HYDRA_FULL_ERROR="0", SER_CACHE=str(cache),
               OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def metrics_by_snr(sweep: Path) -> dict[str, dict]:
    out = {}
    for metrics in sweep.glob("*/metrics.json"):
        out[json.loads((metrics.parent / "run.json").read_text())["snr"]] = json.loads(metrics.read_text())
    return out


def assert_cache_whole(cache: Path) -> None:
    """Every cache file matches its size and checksum record, and no temporary file is left."""
    files = [p for p in cache.rglob("*.npz")]
    assert {p.name.split("-")[0] for p in files} == {"blocks", "noise"}, files
    for path in files:
        assert damage(path, json.loads(Path(f"{path}{SUM_SUFFIX}").read_text())) is None, path
    assert (cache / "demo_corpus" / "seed0" / "demo_corpus.json").is_file()
    assert not list(cache.rglob("*.tmp"))


@pytest.mark.slow
def test_parallel_jobs_on_an_empty_cache_build_it_once_and_match_a_sequential_sweep(tmp_path):
    sweep_args = ["-m", "snr=clean,15", *TINY]
    parallel = train([*sweep_args, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={tmp_path / 'parallel'}"], tmp_path, tmp_path / "cache-parallel")
    assert "CacheWarning" not in parallel.stderr
    # both jobs started on the empty cache; one cut the blocks, the other waited and read them
    assert parallel.stderr.count("| 0/24 [") == 1, parallel.stderr[-3000:]  # one progress bar starts
    assert_cache_whole(tmp_path / "cache-parallel")
    train([*sweep_args, f"hydra.sweep.dir={tmp_path / 'sequential'}"], tmp_path, tmp_path / "cache-sequential")
    together, one_by_one = metrics_by_snr(tmp_path / "parallel"), metrics_by_snr(tmp_path / "sequential")
    assert set(together) == set(one_by_one) == {"clean", "15"}
    for snr, metrics in one_by_one.items():
        for test_set, m in metrics.items():
            assert together[snr][test_set]["confusion_matrix"] == m["confusion_matrix"]
            assert together[snr][test_set]["weighted_f1"] == pytest.approx(m["weighted_f1"], abs=1e-9)
