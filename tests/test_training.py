"""train.py end to end, as a user runs it: a run, a sweep, W&B offline, kill and resume, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.reporting.predictions import read_predictions
from tests.conftest import FAST, REPO, run_script

METRIC_KEYS = {"accuracy", "ua", "weighted_precision", "weighted_recall", "weighted_f1", "macro_f1",
               "utterance_accuracy", "confusion_matrix", "n_blocks"}


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = ok(run_script("train.py", [*FAST, "logger=csv", f"hydra.run.dir={run_dir}"], cwd=run_dir))
    return run_dir, result


def test_a_run_writes_metrics_config_and_checkpoints(finished_run):
    run_dir, result = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["clean", "0dB", "5dB", "10dB", "15dB", "20dB", "40dB"]
    for m in metrics.values():
        assert METRIC_KEYS <= set(m)
        assert 0.0 <= m["accuracy"] <= 1.0 and len(m["confusion_matrix"]) == 4
        assert sum(map(sum, m["confusion_matrix"])) == m["n_blocks"] > 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["dataset"] == "demo" and run["regime"] == "augmented" and run["fold"] == 0
    assert run["classes"] == ["anger", "happy", "sad", "neutral"]
    assert set(run["data_fingerprint"]["per_class"]) == set(run["classes"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert "seed: 0" in (run_dir / "config.yaml").read_text()
    with open(run_dir / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "path", "speaker", "session", "label", "part", "blocks"]
    blocks = {part: sum(int(r["blocks"]) for r in rows if r["part"] == part)
              for part in ("train", "validation", "test")}
    assert blocks["test"] >= metrics["clean"]["n_blocks"] and min(blocks.values()) > 0  # limit_test_batches
    assert len(run["split_plan"]) == 16
    assert "| Clean |" in result.stdout and "Wavgf1" in result.stdout
    # predictions.csv: every scored test block once per test set, its probabilities and speaker
    pred = read_predictions(run_dir / "predictions.csv")
    assert pred.classes == run["classes"] and len(pred) == sum(m["n_blocks"] for m in metrics.values())
    assert np.allclose(pred.probs.sum(axis=1), 1.0, atol=1e-4)
    tested = {r["id"]: r["speaker"] for r in rows if r["part"] == "test"}
    assert set(pred.utterance) <= set(tested) and all(tested[u] == s for u, s in zip(pred.utterance, pred.speaker))
    clean = pred.select(pred.test_set == "clean")
    hits = (clean.predicted == clean.label).mean()
    assert hits == pytest.approx(metrics["clean"]["accuracy"], abs=1e-6)


def test_sweep_jobs_log_to_wandb_offline_and_resume_skips_finished_ones(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "snr=clean,15", *FAST, "logger=wandb", f"hydra.sweep.dir={sweep}"]
    result = ok(run_script("train.py", args, cwd=tmp_path))
    assert "logging offline" in result.stdout
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "metrics.json").is_file())
    # job folders are named by their overrides, so a relaunch finds them whatever their order
    assert [[kv for kv in j.split("_") if kv.startswith("snr-")] for j in jobs] == [["snr-15"], ["snr-clean"]]
    for job in jobs:
        run_id = (sweep / job / "wandb_id.txt").read_text().strip()
        [offline] = list((sweep / job / "wandb").glob(f"offline-run-*-{run_id}"))
        record = next(offline.glob("*.wandb")).read_bytes()
        assert b"test/clean/weighted_f1" in record and b"sweep" in record  # metrics + group
    regime = {j: json.loads((sweep / j / "run.json").read_text())["regime"] for j in jobs}
    assert sorted(regime.values()) == ["augmented", "clean"]
    stamps = {j: (sweep / j / "metrics.json").stat().st_mtime_ns for j in jobs}
    again = ok(run_script("train.py", [*args, "resume=true"], cwd=tmp_path))
    assert again.stdout.count("finished before") == 2
    assert stamps == {j: (sweep / j / "metrics.json").stat().st_mtime_ns for j in jobs}


def test_resuming_an_older_sweep_continues_its_jobs_in_their_old_folders(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "snr=clean", *FAST, "logger=none", f"hydra.sweep.dir={sweep}"]
    old_names = ["hydra.job.config.override_dirname.kv_sep='='",
                 "hydra.job.config.override_dirname.item_sep=','"]  # how older versions named jobs
    ok(run_script("train.py", [*args, *old_names], cwd=tmp_path))
    [old] = [p for p in sweep.iterdir() if (p / "metrics.json").is_file()]
    assert "snr=clean" in old.name.split(",")
    again = ok(run_script("train.py", [*args, "resume=true"], cwd=tmp_path))
    assert f"Continuing {old.name}" in again.stdout and f"{old} finished before" in again.stdout
    assert [p for p in sweep.iterdir() if (p / "metrics.json").is_file()] == [old]


def test_killed_run_resumes_from_last_checkpoint_to_the_configured_epochs(tmp_path):
    run_dir = tmp_path / "run"
    args = [*FAST, "trainer.max_epochs=3", "trainer.limit_train_batches=4", "logger=csv",
            f"hydra.run.dir={run_dir}"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the run ended before writing its first checkpoint"
    assert not (run_dir / "metrics.json").exists(), "killed too late: the run had finished"
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert killed_at < 2
    result = ok(run_script("train.py", [*args, "resume=true"], cwd=tmp_path))
    assert "Resuming from" in result.stdout
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 3 * 4  # exactly 3 epochs of 4 batches, none repeated
    assert json.loads((run_dir / "metrics.json").read_text())["clean"]["n_blocks"] > 0


@pytest.mark.parametrize("overrides, expected", [
    (["dataset=ahsn", "dataset.root=/nowhere/IEMOCAP_full_release"], "/nowhere/IEMOCAP_full_release"),
    (["fold=9"], "fold=9"),
    (["model.pretrained=/nowhere/weights.pth"], "/nowhere/weights.pth"),
    (["snr=loud"], "snr='loud'"),
])
def test_bad_input_stops_before_training_with_one_paragraph(tmp_path, overrides, expected):
    result = run_script("train.py", [*FAST, "logger=none", f"hydra.run.dir={tmp_path}", *overrides],
                        cwd=tmp_path)
    assert result.returncode == 2
    assert "error:" in result.stderr and expected in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_checkpoint_from_another_class_set_is_refused(finished_run, tmp_path):
    from tests.fake_corpora import make_fake_manifest

    run_dir, _ = finished_run
    fake = make_fake_manifest(tmp_path / "corpus", labels=("calm", "angry", "happy", "sad"), per_class=2)
    result = run_script("train.py", [*FAST, "logger=none", "dataset=manifest",
                                     f"dataset.manifest={fake.csv_path}",
                                     f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                     f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2 and "trained on classes" in result.stderr.replace("\n", " ")


@pytest.mark.parametrize("override, expected", [
    ("dataset=iemocap5", "there is no 'dataset/iemocap5' Available options in 'dataset'"),  # lists the options
    ("optim.lrr=0.1", "`optim` has no key `lrr`; it has"),       # a typo in a key: lists the keys
])
def test_config_typos_are_refused_before_anything_runs(tmp_path, override, expected):
    result = run_script("train.py", [override, f"hydra.run.dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2 and expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and not (tmp_path / "checkpoints").exists()
