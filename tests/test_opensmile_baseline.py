"""model=opensmile_svm, the field's standard baseline (openSMILE functionals + SVM), on the demo
corpus: the run files of every run, settings chosen on validation only, features cached by
their audio (a second run extracts nothing and scores the same), the feature sets' sizes, and
one paragraph, no half-written run, when openSMILE is missing or cannot read the blocks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, compose, run_script
from tests.test_evaluate import ok

# eGeMAPS on the clean-trained demo fold: every part extracted once, about 20 ms per block
OVERRIDES = ["model=opensmile_svm", "logger=none", "snr=clean", "trainer.enable_progress_bar=false",
             "data.test_snrs=[5]"]  # clean + one noisy test set: every path, a third of the extraction


def read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def train_in_process(run_dir: Path, overrides: list[str]) -> dict:
    """train.py's baseline path in this process (no interpreter start), writing into ``run_dir``."""
    from ser.baseline import run as baseline_run

    cfg = compose([*OVERRIDES, *overrides])
    with mock.patch.object(baseline_run, "run_directory", lambda cfg: (run_dir, None)):
        return baseline_run.train_baseline(cfg)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One run through train.py with an empty feature cache, then the same run again in-process."""
    root = tmp_path_factory.mktemp("opensmile")
    cache = f"data.cache_dir={root / 'cache'}"  # blocks and features; the demo corpus stays shared
    ok(run_script("train.py", [*OVERRIDES, cache, f"hydra.run.dir={root / 'first'}"], cwd=root))
    train_in_process(root / "second", [cache])
    return {"first": root / "first", "second": root / "second", "cache": root / "cache"}


def test_a_run_writes_every_test_sets_metrics_and_predictions(runs):
    from ser.data.snr_levels import snr_name
    from ser.models.metrics import score_test_set
    from ser.reporting.predictions import read_predictions

    run = runs["first"]
    metrics, record = read(run, "metrics.json"), read(run, "run.json")
    config = yaml.safe_load((run / "config.yaml").read_text())
    names = [snr_name(s) for s in [math.inf, *config["data"]["test_snrs"]]]
    assert list(metrics) == record["test_sets"] == names
    expected_keys = set(score_test_set(*_dummy_scores()))
    assert all(set(m) == expected_keys for m in metrics.values())
    assert record["model"] == "opensmile_svm" and record["n_features"] == 88
    assert config["model"]["feature_set"] == "egemaps" and "optim" not in config
    assert (run / "checkpoints" / "baseline.pkl").is_file()

    pred = read_predictions(run / "predictions.csv")
    n_blocks = {m["n_blocks"] for m in metrics.values()}
    assert len(n_blocks) == 1  # every test set holds the fold's test blocks
    assert len(pred) == n_blocks.pop() * len(names)
    assert list(dict.fromkeys(pred.test_set)) == names
    assert pred.classes == record["classes"] and np.allclose(pred.probs.sum(1), 1, atol=1e-5)
    for name in names:  # the file's predictions are the ones metrics.json scored
        part = pred.select(pred.test_set == name)
        assert np.mean(part.predicted == part.label) == pytest.approx(metrics[name]["accuracy"], abs=1e-6)
        assert len(set(zip(part.utterance, part.block))) == len(part)  # each block once per set


def _dummy_scores():
    import torch

    return torch.full((2, 4), 0.25), torch.tensor([0, 1]), torch.tensor([0, 0])


def test_the_svm_settings_are_chosen_on_validation_ua_from_the_configured_grid(runs):
    record = read(runs["first"], "run.json")
    selection = record["selection"]
    from ser.baseline.svm_grid import grid_points, sub_grids

    grid = compose(OVERRIDES).model.grids.egemaps
    parts = sub_grids(grid)
    assert selection["grid"] == (parts[0] if len(parts) == 1 else parts)
    results = selection["results"]
    points = grid_points(grid)
    assert len(results) == sum(math.prod(len(v) for v in part.values()) for part in parts)
    keys = list(points[0])
    assert [{k: r[k] for k in keys} for r in results] == points
    fitted = [r for r in results if "skipped" not in r]  # model.c_patience may skip high C
    assert fitted and all("c_patience" in r["skipped"] for r in results if "skipped" in r)
    uas = [r["validation_ua"] for r in fitted]
    best = fitted[int(np.argmax(uas))]  # the first of equals
    assert {k: selection["chosen"][k] for k in keys} == {k: best[k] for k in keys}
    # the kept model is the chosen one: its validation UA is the run's
    assert selection["validation_ua"] == max(uas) == pytest.approx(record["validation"]["ua"])
    assert f"'C': {best['C']}" in record["estimator"]


def test_a_second_run_reuses_the_cached_features_and_scores_the_same(runs):
    first, second = read(runs["first"], "run.json"), read(runs["second"], "run.json")
    cold, warm = first["feature_cache"], second["feature_cache"]
    assert cold["hits"] == 0 and cold["chunks"] > 0
    n_items = first["n_train_items"] + sum(read(runs["first"], "metrics.json")[n]["n_blocks"]
                                           for n in first["test_sets"])
    assert cold["blocks_extracted"] > n_items  # + the validation blocks
    assert warm["chunks"] == warm["hits"] == cold["chunks"] and warm["blocks_extracted"] == 0
    assert Path(cold["dir"]).is_relative_to(runs["cache"])
    for name in ("metrics.json", "predictions.csv"):
        assert (runs["second"] / name).read_text() == (runs["first"] / name).read_text()
    assert second["selection"] == {**first["selection"], "results": [
        {**r, **({"fit_seconds": s["fit_seconds"]} if "fit_seconds" in s else {})}
        for r, s in zip(first["selection"]["results"], second["selection"]["results"])]}


def voice(n: int = 2, rate: int = 16000) -> np.ndarray:
    """``n`` 1-s harmonic tones (different pitch each) over a little noise, peak about 0.3."""
    t = np.arange(rate) / rate
    rng = np.random.default_rng(0)
    return np.stack([0.05 * sum(np.sin(2 * np.pi * h * (140 + 50 * k) * t) / h for h in range(1, 6))
                     + 0.003 * rng.standard_normal(rate) for k in range(n)]).astype(np.float32)


@pytest.mark.parametrize("feature_set, size", [("egemaps", 88), ("compare", 6373)])
def test_each_feature_set_has_its_published_size_and_ignores_the_blocks_level(feature_set, size):
    from ser.baseline.opensmile_svm import OpenSmileSvm

    model = OpenSmileSvm(feature_set=feature_set)
    blocks = voice()
    features = model.features(blocks)
    assert features.shape == (2, size) == (2, len(model.feature_names))
    assert np.isfinite(features).all() and not np.allclose(features[0], features[1])
    # peak-normalised first: a block louder than full scale is not wrapped around by the
    # int16 conversion inside openSMILE, and the gain never reaches the features
    np.testing.assert_allclose(model.features(4.0 * blocks), features, rtol=1e-4, atol=1e-3)
    # per block: the same features alone as in a chunk
    np.testing.assert_array_equal(model.features(blocks[1:]), features[1:])


def test_the_grid_choice_is_the_validation_argmax_fitted_on_training_only():
    from ser.baseline.estimator import SvmBaseline, validation_ua
    from ser.baseline.svm_grid import grid_points

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 6))
    x = centres[np.arange(120) % 3] + 1.5 * rng.standard_normal((120, 6))
    y = np.arange(120) % 3
    val_x = centres[np.arange(60) % 3] + 1.5 * rng.standard_normal((60, 6))
    val_y = np.arange(60) % 3
    grid = {"kernel": ["rbf", "linear"], "C": [0.001, 0.1, 10.0]}
    model = SvmBaseline(grid=grid, class_weight="balanced", break_ties=True)
    model.fit(x, y, 3, val_x, val_y)
    # each point scored by hand: fitted on training, UA on validation
    uas = [validation_ua(SvmBaseline(**p, class_weight="balanced", break_ties=True)
                         .fit(x, y, 3).pipeline, val_x, val_y, 3) for p in grid_points(grid)]
    assert [r["validation_ua"] for r in model.selection["results"]] == uas
    best = grid_points(grid)[int(np.argmax(uas))]
    assert {k: model.chosen[k] for k in grid} == best
    # the kept model saw the training part only (the scaler's mean is the training mean)
    np.testing.assert_allclose(model.pipeline[0].mean_, x.mean(0))
    refit = SvmBaseline(**best, class_weight="balanced", break_ties=True).fit(x, y, 3)
    np.testing.assert_array_equal(model.predict_scores(val_x)[0], refit.predict_scores(val_x)[0])
    # a tie goes to the earlier point: on well-separated classes every C scores UA 1
    far_x, far_y = 10 * centres[y] + 0.1 * x, y
    for order in ([1.0, 10.0], [10.0, 1.0]):
        tied = SvmBaseline(grid={"C": order}, class_weight=None).fit(far_x, far_y, 3, far_x, far_y)
        assert [r["validation_ua"] for r in tied.selection["results"]] == [1.0, 1.0]
        assert tied.chosen["C"] == order[0]


def test_grid_mistakes_stop_with_one_paragraph():
    from ser.baseline.estimator import SvmBaseline
    from ser.baseline.svm import MfccSvm
    from ser.errors import SerError

    x, y = np.arange(8.0)[:, None] * [1.0, -1.0], np.arange(8) % 2
    with pytest.raises(SerError, match="model.C=10.0 is fixed but model.grid also searches C"):
        MfccSvm(C=10.0, grid={"C": [1, 3]})
    with pytest.raises(SerError, match="model.grid.degree"):
        SvmBaseline(grid={"degree": [2, 3]})
    with pytest.raises(SerError, match="no validation blocks"):
        SvmBaseline(grid={"C": [1, 3]}).fit(x, y, 2)
    with pytest.raises(SerError, match="model.kernel=linear"):
        SvmBaseline(kernel="rbf", solver="liblinear").fit(x, y, 2)
    with pytest.raises(SerError, match="model.feature_set"):
        from ser.baseline.opensmile_svm import OpenSmileSvm

        OpenSmileSvm(feature_set="gemaps")


def test_a_missing_opensmile_stops_train_py_with_one_paragraph_before_anything_is_written(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "opensmile.py").write_text("raise ImportError('No module named opensmile')\n")
    run_dir = tmp_path / "run"
    # run_script's environment, with a module named opensmile that fails to import first
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{REPO}", HYDRA_FULL_ERROR="0")
    result = subprocess.run([sys.executable, str(REPO / "train.py"), *OVERRIDES,
                             f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "error: model=opensmile_svm needs the opensmile package" in result.stderr
    assert "pip install 'opensmile>=2.5'" in " ".join(result.stderr.split())
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "run.json").exists()


def test_blocks_openSMILE_cannot_summarise_stop_the_run_before_its_files(tmp_path):
    from ser.errors import SerError

    run_dir = tmp_path / "run"
    # 50-ms blocks: too short for openSMILE's functionals (it returns NaN)
    with pytest.raises(SerError) as raised:
        train_in_process(run_dir, [f"data.cache_dir={tmp_path / 'cache'}", "data.block_seconds=0.05"])
    message = str(raised.value)
    assert message.startswith("Extracting the features of the training part of fold 0 of dataset=demo")
    assert "openSMILE returned no functionals" in message and "data.block_seconds" in message
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "predictions.csv").exists()
    assert not list((tmp_path / "cache").glob("baseline-features/**/*.npy"))  # nothing cached


def test_a_failing_opensmile_is_one_paragraph_naming_the_blocks():
    from ser.baseline.smile import smile_functionals
    from ser.errors import SerError

    def broken(signal, sampling_rate):
        raise RuntimeError("component graph could not be built")

    with pytest.raises(SerError, match="openSMILE failed on a block of 16000 samples at 16000 Hz"):
        smile_functionals(broken, voice(1), 16000)


def test_the_feature_cache_keys_chunks_by_their_audio_and_rebuilds_a_damaged_file(tmp_path):
    from ser.baseline.extraction import FeatureCache
    from ser.cache_files import CacheWarning

    calls = []

    def extract(blocks):
        calls.append(len(blocks))
        return blocks[:, :3].astype(np.float64) * 2

    cache = FeatureCache(tmp_path, "toy", "toy v1")
    blocks = voice(3)
    first = cache(blocks, extract)
    assert calls == [3] and np.array_equal(cache(blocks.copy(), extract), first) and calls == [3]
    cache(blocks[:2], extract)  # other audio: extracted
    assert calls == [3, 2] and cache.summary()["hits"] == 1 and cache.summary()["chunks"] == 3
    other_key = FeatureCache(tmp_path, "toy", "toy v2")
    other_key(blocks, extract)
    assert calls == [3, 2, 3]  # another extractor version never reads these files
    path = cache.path(blocks)
    path.write_bytes(path.read_bytes()[:-8])  # truncated on disk
    with pytest.warns(CacheWarning, match="damaged"):
        again = cache(blocks, extract)
    assert calls == [3, 2, 3, 3] and np.array_equal(again, first)
