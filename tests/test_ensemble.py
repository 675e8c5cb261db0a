"""evaluate.py ensemble=: two groups' test probabilities averaged fold by fold into run folders
that the sweep report pools and pairs like runs; bad members are one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.errors import SerError
from ser.evaluation.ensemble import write_ensemble
from ser.reporting.predictions import read_predictions
from ser.reporting.sweep_report import summarise_sweep
from tests.test_pooled_sweep import CLASSES, IGNORE, toy_sweep, write_run


def test_an_ensemble_averages_its_members_and_pools_beside_them(tmp_path):
    sweep = tmp_path / "sweep"
    toy_sweep(sweep, np.random.default_rng(3))
    result = write_ensemble([sweep / "net", sweep / "svm"], sweep / "ensemble")
    assert result["folds"] == [0, 1] and len(result["runs"]) == 2
    for fold in (0, 1):
        net = read_predictions(sweep / "net" / f"fold-{fold}" / "predictions.csv")
        svm = read_predictions(sweep / "svm" / f"fold-{fold}" / "predictions.csv")
        both = read_predictions(sweep / "ensemble" / f"fold-{fold}" / "predictions.csv")
        assert np.allclose(both.probs, (net.probs + svm.probs) / 2, atol=1e-6)
        metrics = json.loads((sweep / "ensemble" / f"fold-{fold}" / "metrics.json").read_text())
        clean = both.test_set == "clean"
        y, p = both.label[clean], both.predicted[clean]
        ua = np.mean([np.mean(p[y == c] == c) for c in range(len(CLASSES)) if np.any(y == c)])
        assert metrics["clean"]["ua"] == pytest.approx(ua, abs=1e-6)
        record = json.loads((sweep / "ensemble" / f"fold-{fold}" / "run.json").read_text())
        assert record["model"] == "net + svm" and "training" not in record
    summary = summarise_sweep(sweep, IGNORE, statistics={"n_boot": 100, "n_perm": 100})
    labels = [g["label"] for g in summary["groups"]]
    ensemble = next(label for label in labels if "net + svm" in label)
    assert ensemble in summary["pooled"]["groups"]
    assert any(ensemble in (c["a"], c["b"]) for c in summary["pooled"]["comparisons"])


def test_members_that_cannot_make_an_ensemble_are_one_clear_error(tmp_path):
    sweep = tmp_path / "sweep"
    toy_sweep(sweep, np.random.default_rng(4))
    with pytest.raises(SerError, match="two or more member folders"):
        write_ensemble([sweep / "net"], tmp_path / "out")
    with pytest.raises(SerError, match="needs out_dir"):
        write_ensemble([sweep / "net", sweep / "svm"], None)
    with pytest.raises(SerError, match="two finished runs of fold 0"):
        write_ensemble([sweep, sweep / "svm"], tmp_path / "out")
    labels = np.zeros(12, dtype=np.int64)
    write_run(tmp_path / "other" / "fold-3", "net", 3, ["s9"] * 12, labels, labels)
    with pytest.raises(SerError, match="share no fold"):
        write_ensemble([sweep / "net", tmp_path / "other"], tmp_path / "out")
    assert not (tmp_path / "out").exists()   # nothing written by a refused ensemble


def test_evaluate_py_writes_an_ensemble_and_refuses_one_without_out_dir(tmp_path):
    from tests.conftest import run_script

    sweep = tmp_path / "sweep"
    toy_sweep(sweep, np.random.default_rng(5))
    members = f"ensemble=[{sweep / 'net'},{sweep / 'svm'}]"
    refused = run_script("evaluate.py", [members], tmp_path)
    assert refused.returncode == 2 and "needs out_dir=DIR" in refused.stderr + refused.stdout
    done = run_script("evaluate.py", [members, f"out_dir={sweep / 'ensemble'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "folds 0, 1" in done.stdout and (sweep / "ensemble" / "fold-1" / "metrics.json").is_file()
