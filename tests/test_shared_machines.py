"""The faults of shared machines, for real: parallel sweep jobs starting at once on an empty
cache, and a sweep through Hydra's submitit launcher (its local executor: the path a SLURM user
takes, without a cluster) with one job killed and the sweep resumed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ser.cache_files import SUM_SUFFIX, damage
from tests.conftest import FAST, REPO

# Two tiny jobs on a small demo corpus (24 utterances), so that building the caches is a real
# share of each job and the two builds overlap.
# Job folders named by the swept key alone: all of these overrides would make a name too long.
TINY = [*FAST, "logger=none", "+dataset.n_speakers=2", "+dataset.utterances_per_class=3",
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


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            found.append(int(status.parent.name))
    return found


def kill_job_writing(sweep: Path, job: str, deadline: float) -> None:
    """SIGKILL the submitit job (its controller and its task) that trains into ``sweep/job``,
    once that job has written its first last.ckpt: a preempted cluster job."""
    last = sweep / job / "checkpoints" / "last.ckpt"
    while not last.exists():
        assert time.time() < deadline, f"{last} never appeared"
        time.sleep(0.1)
    for log in sweep.glob(".submitit/*/*_log.out"):
        if f"Run directory: {sweep / job}" in log.read_text(errors="replace"):
            controller = int(log.parent.name)  # the local executor's job id is its pid
            for pid in [*_children(controller), controller]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
    raise AssertionError(f"no submitit log names {sweep / job}")


@pytest.mark.slow
def test_submitit_sweep_with_a_killed_job_resumes_with_resume_true(tmp_path):
    sweep = tmp_path / "sweep"
    cache = Path(os.environ["SER_CACHE"])
    args = ["-m", "snr=clean,15", *TINY, "trainer.max_epochs=3", "hydra/launcher=submitit_local",
            f"hydra.sweep.dir={sweep}"]
    env = dict(os.environ, PYTHONPATH=str(REPO), HYDRA_FULL_ERROR="0", SER_CACHE=str(cache))
    launch = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        kill_job_writing(sweep, "snr-15", time.time() + 300)
        output, _ = launch.communicate(timeout=300)
    finally:
        launch.kill()
    assert launch.returncode != 0  # the sweep reports the job it lost
    assert (sweep / "snr-clean" / "metrics.json").is_file() and not (sweep / "snr-15" / "metrics.json").exists()
    killed_at = torch.load(sweep / "snr-15" / "checkpoints" / "last.ckpt", map_location="cpu",
                           weights_only=True)["global_step"]
    resumed = train([*args, "resume=true"], tmp_path, cache)
    logs = "".join(p.read_text(errors="replace") for p in sweep.glob(".submitit/*/*_log.out"))
    assert f"{sweep / 'snr-clean'} finished before" in logs
    assert f"Resuming from {sweep / 'snr-15' / 'checkpoints' / 'last.ckpt'}" in logs, resumed.stdout[-2000:]
    final = torch.load(sweep / "snr-15" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 3 * 2 > killed_at and (sweep / "snr-15" / "metrics.json").is_file()
