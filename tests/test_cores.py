"""Each process takes its share of the cores: what other live ser processes hold is left."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture
def registry(tmp_path, monkeypatch):
    import ser.cores as cores

    monkeypatch.setattr(cores, "REGISTRY", tmp_path / "ser-cores.json")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(cores.USER_SETTING, raising=False)
    monkeypatch.setattr(cores, "usable_cores", lambda: 4)
    return cores


def test_a_process_takes_the_cores_others_do_not_hold(registry):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        registry.REGISTRY.write_text(json.dumps({str(other.pid): 3, "999999999": 4}))  # the second is gone
        n, why = registry.choose_threads("auto")
        assert n == 1 and "3 held by 1 other" in why
        held = json.loads(registry.REGISTRY.read_text())
        assert held == {str(other.pid): 3, str(__import__("os").getpid()): 1}
    finally:
        other.kill()
        other.wait()
    n, _ = registry.choose_threads("auto")   # the other process ended: all four cores
    assert n == 4
    registry.release()
    assert json.loads(registry.REGISTRY.read_text()) == {}


def test_a_number_or_omp_num_threads_decides(registry, monkeypatch):
    assert registry.choose_threads(3) == (3, "threads=3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert registry.choose_threads("auto") == (2, "OMP_NUM_THREADS=2")
    registry.release()


def test_a_run_that_chose_its_threads_gives_cores_back_when_another_starts(registry):
    import torch

    before = torch.get_num_threads()
    try:
        n, _ = registry.choose_threads("auto")
        torch.set_num_threads(n)
        assert n == 4
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            held = json.loads(registry.REGISTRY.read_text())
            registry.REGISTRY.write_text(json.dumps({**held, str(other.pid): 2}))
            assert registry.rebalance() == 2 and torch.get_num_threads() == 2   # 4 cores, 2 processes
        finally:
            other.kill()
            other.wait()
        assert registry.rebalance() == 4   # alone again
        registry.choose_threads(1)   # a number: rebalancing leaves it alone
        assert registry.rebalance() is None
    finally:
        registry.release()
        torch.set_num_threads(before)


def test_waiting_threads_sleep_only_where_threads_exceed_the_free_cores(registry):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        registry.REGISTRY.write_text(json.dumps({str(other.pid): 4}))
        assert registry.choose_threads("auto")[0] == 1 and registry._crowded   # others hold all 4
        registry.REGISTRY.write_text(json.dumps({str(other.pid): 3}))
        assert registry.choose_threads("auto")[0] == 1 and not registry._crowded   # 1 + 3 fit
        assert registry.choose_threads(2) and registry._crowded   # a forced 2 beside 3 do not
    finally:
        other.kill()
        other.wait()
    assert registry.choose_threads("auto")[0] == 4 and not registry._crowded
    registry.release()


@pytest.mark.parametrize("others_hold_all", [False, True])
def test_a_command_sets_the_wait_policy_before_torch_loads(tmp_path, others_hold_all):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["TMPDIR"] = str(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        if others_hold_all:
            (tmp_path / f"ser-cores-{os.getuid()}.json").write_text(json.dumps({str(other.pid): 64}))
        code = ("import os; from ser.cores import apply_threads; line = apply_threads(); "
                "print(os.environ.get('OMP_WAIT_POLICY')); print(line)")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    finally:
        other.kill()
        other.wait()
    assert out[0] == ("PASSIVE" if others_hold_all else "None")
    assert ("waiting threads sleep" in out[1]) == others_hold_all


def test_a_finished_job_gives_its_cores_back_while_its_worker_waits(registry, monkeypatch):
    """A parallel sweep's worker process lives on between jobs: once a job ends it holds no
    cores, so the job still running takes them back at its next rebalance."""
    import os

    import ser.training.runner as runner
    from omegaconf import OmegaConf

    from ser.commands.train import train

    seen = {}
    monkeypatch.setattr(runner, "train", lambda cfg: seen.setdefault(
        "held", json.loads(registry.REGISTRY.read_text())) and {})
    train.__wrapped__(OmegaConf.create({"model": {"_target_": "x.y"}, "threads": "auto"}))
    assert seen["held"] == {str(os.getpid()): 4}
    assert json.loads(registry.REGISTRY.read_text()) == {}


def test_a_launchers_thread_limit_is_not_taken_for_the_users(registry, monkeypatch):
    """joblib's workers get OMP_NUM_THREADS = cores // jobs from the launcher; the command
    noted the user's own setting (none) before Hydra started, so the worker chooses and
    rebalances itself. A setting the user made is still obeyed."""
    monkeypatch.setenv(registry.USER_SETTING, "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    n, why = registry.choose_threads("auto")
    assert n == 4 and "OMP_NUM_THREADS" not in why
    monkeypatch.setenv(registry.USER_SETTING, "1")
    assert registry.choose_threads("auto") == (1, "OMP_NUM_THREADS=1")
    registry.release()


def test_a_run_keeps_every_thread_count_it_trained_with_and_says_when_they_changed(monkeypatch, capsys):
    """Torch splits its sums by thread: a run whose share changed while it trained says so at
    its end, and run.json's training.threads lists the counts."""
    from types import SimpleNamespace

    import torch

    import ser.training.core_share as core_share

    answers = iter([None, 1, None, 2])
    monkeypatch.setattr(core_share, "rebalance", lambda: next(answers))
    share = core_share.CoreShare(every=1)
    trainer = SimpleNamespace(global_step=0, max_steps=100)
    share.on_train_start(trainer, None)
    for step in range(1, 5):
        trainer.global_step = step
        share.on_train_batch_end(trainer, None, None, None, step)
    share.on_train_end(trainer, None)
    assert share.thread_counts == {torch.get_num_threads(), 1, 2}
    assert "Threads changed while training (1, 2" in capsys.readouterr().out
    steady = core_share.CoreShare(every=1000)
    steady.on_train_start(trainer, None)
    steady.on_train_end(trainer, None)
    assert "Threads changed" not in capsys.readouterr().out
