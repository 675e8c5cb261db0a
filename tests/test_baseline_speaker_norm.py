"""model.speaker_norm: the SVM baselines' features standardised per speaker before the global
scaler and the SVM (each test speaker by its own unlabelled test blocks), on synthetic arrays
and through a tiny leave-speakers-out run on the demo corpus, re-tested from its pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest


def test_each_speaker_gets_mean_zero_and_std_one_and_a_single_block_gets_zeros():
    from ser.baseline.speaker_norm import speaker_standardise

    rng = np.random.default_rng(0)
    speakers = np.array(["a"] * 6 + ["b"] * 5 + ["c"], dtype=object)
    features = rng.normal(3.0, 2.0, (12, 4)) + np.repeat([[100.0], [-50.0], [7.0]], [6, 5, 1], axis=0)
    features[:6, 3] = 42.0  # constant within speaker a: centred, not divided by zero
    out = speaker_standardise(features, speakers)
    assert out.shape == features.shape and np.isfinite(out).all()
    for who, cols in (("a", [0, 1, 2]), ("b", [0, 1, 2, 3])):
        rows = out[speakers == who]
        np.testing.assert_allclose(rows[:, cols].mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(rows[:, cols].std(axis=0), 1.0, atol=1e-12)
    assert np.all(out[:6, 3] == 0.0)
    assert np.all(out[speakers == "c"] == 0.0)  # one block: zeros, not NaN

    # statistics from the `fit` rows only (a test set's grid blocks), applied to all rows
    fit = np.ones(12, dtype=bool)
    fit[5] = False
    moved = speaker_standardise(features, speakers, fit)
    basis = features[:5, :3]
    np.testing.assert_allclose(moved[:6, :3], (features[:6, :3] - basis.mean(0)) / basis.std(0))

    # unknown speakers ("" or None): the whole set's statistics
    unknown = np.array([""] * 6 + [None] * 6, dtype=object)
    whole = speaker_standardise(features, unknown)
    np.testing.assert_allclose(whole, (features - features.mean(0)) / features.std(0))


def test_the_setting_parses_and_off_changes_nothing():
    from ser.baseline.estimator import SvmBaseline
    from ser.baseline.speaker_norm import speaker_norm_setting
    from ser.baseline.svm import MfccSvm
    from ser.errors import SerError

    assert [speaker_norm_setting(v) for v in (False, None, "none", "false", True, "speaker", "true")] \
        == [False, False, False, False, True, True, True]
    with pytest.raises(SerError, match="model.speaker_norm"):
        SvmBaseline(speaker_norm="utterance")
    features = np.arange(12.0).reshape(4, 3)
    assert SvmBaseline().normalise(features, np.array(["a", "a", "b", "b"])) is features
    assert "speaker_norm" not in repr(MfccSvm()) and "speaker_norm=True" in repr(MfccSvm(speaker_norm=True))
    # an estimator pickled before the setting existed loads with it off
    old = MfccSvm(C=1.0)
    del old.__dict__["speaker_norm"]
    assert pickle.loads(pickle.dumps(old)).speaker_norm is False


def speaker_data(rng: np.random.Generator, n_speakers: int, per_class: int = 20, dims: int = 10):
    """Two classes 1 unit apart on 4 of ``dims`` features (unit noise), every speaker holding
    ``per_class`` blocks of each and its own offset of std 5 on every feature."""
    labels = np.tile(np.repeat([0, 1], per_class), n_speakers)
    speakers = np.repeat([f"s{k}" for k in range(n_speakers)], 2 * per_class).astype(object)
    offsets = np.repeat(rng.normal(0.0, 5.0, (n_speakers, dims)), 2 * per_class, axis=0)
    signal = np.zeros((len(labels), dims))
    signal[:, :4] = labels[:, None]
    return signal + offsets + rng.standard_normal((len(labels), dims)), labels, speakers


def test_speaker_norm_removes_a_speaker_offset_for_new_speakers():
    from ser.baseline.estimator import SvmBaseline

    rng = np.random.default_rng(7)
    train_x, train_y, train_s = speaker_data(rng, 30)
    test_x, test_y, test_s = speaker_data(rng, 20)  # other speakers, other offsets
    accuracy = {}
    for on in (False, True):
        model = SvmBaseline(kernel="linear", C=1.0, speaker_norm=on)
        model.fit(model.normalise(train_x, train_s), train_y, 2)
        _, preds = model.predict_scores(model.normalise(test_x, test_s))
        accuracy[on] = float(np.mean(preds == test_y))
    assert accuracy[True] > 0.75  # about 0.84: the classes' unit-noise overlap alone
    assert accuracy[True] > accuracy[False] + 0.15  # about 0.58 under the offsets


def test_each_test_set_takes_its_speakers_from_the_table_it_indexes(monkeypatch, capsys):
    """An own test set's utterance indices are the run's corpus's, an ``urdu/...`` set's are
    the other corpus's (``datamodule.utterance_speakers``); unknown speakers are said once."""
    from types import SimpleNamespace

    import ser.baseline.run as run
    from ser.baseline.estimator import SvmBaseline

    own, other = ["a", "b"], ["x", ""]
    datamodule = SimpleNamespace(
        test_set_names=["clean", "urdu/clean"], test_dataloader=lambda: [None, None],
        utterance_speakers=lambda name=None: (other if name and name.startswith("urdu/") else own))
    rng = np.random.default_rng(0)
    part = {"features": rng.standard_normal((4, 3)), "label": np.array([0, 1, 0, 1]),
            "utterance": np.array([0, 0, 1, 1]), "block": np.arange(4), "offset": np.zeros(4)}
    monkeypatch.setattr(run, "mixed_features", lambda *args, **kwargs: dict(part))
    monkeypatch.setattr(run, "test_set_predictions", lambda *args, **kwargs: None)
    monkeypatch.setattr(run.Predictions, "concat", staticmethod(lambda parts: parts))
    seen = []

    class Recording(SvmBaseline):
        def normalise(self, features, speakers, fit=None):
            seen.append(list(speakers))
            return super().normalise(features, speakers, fit)

    model = Recording(kernel="linear", speaker_norm=True).fit(part["features"], part["label"], 2)
    metrics, _ = run.score_test_sets(model, datamodule, None, "fold 0")
    assert list(metrics) == ["clean", "urdu/clean"]
    assert seen == [["a", "a", "b", "b"], ["x", "x", "", ""]]
    said = capsys.readouterr().out
    assert said.count("Speaker normalisation") == 1 and "test set urdu/clean (2 of 4 items)" in said


def test_a_loso_run_with_speaker_norm_records_it_and_re_tests_alike(tmp_path):
    from tests.test_baseline import train_baseline_into
    from tests.test_evaluate import evaluate_in_process

    run = tmp_path / "run"
    metrics = train_baseline_into(run, ["snr=clean", "split=loso", "model.speaker_norm=true",
                                        "model.grid=null", "data.test_snrs=[0]"])
    record = json.loads((run / "run.json").read_text())
    assert record["speaker_norm"] is True and "speaker_norm=True" in record["estimator"]
    assert list(metrics) == record["test_sets"] == ["clean", "0dB"]
    for m in metrics.values():
        assert np.isfinite(m["weighted_f1"]) and m["n_blocks"] > 0
    assert set(record["validation"]) == {"weighted_f1", "ua", "accuracy"}

    # a re-test from the pickle standardises each rebuilt test set per speaker as the run did
    code, _, err = evaluate_in_process([f"ckpt='{run}'", f"out_dir={tmp_path / 'same'}"])
    assert code == 0, err
    same = json.loads((tmp_path / "same" / "evaluation.json").read_text())["metrics"]
    assert same == json.loads((run / "metrics.json").read_text())
    # ... and does so because of the pickle: the same estimator with it off scores otherwise
    pkl = run / "checkpoints" / "baseline.pkl"
    model = pickle.loads(pkl.read_bytes())
    model.speaker_norm = False
    Path(pkl).write_bytes(pickle.dumps(model))
    code, _, err = evaluate_in_process([f"ckpt='{run}'", f"out_dir={tmp_path / 'off'}"])
    assert code == 0, err
    off = json.loads((tmp_path / "off" / "evaluation.json").read_text())["metrics"]
    assert off != same
