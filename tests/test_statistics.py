"""ser.reporting.statistics: metrics from confusion matrices, utterance votes, speaker-bootstrap
intervals that cover the truth, a paired permutation test that finds a real difference and not a
spurious one, item alignment, the robustness summary, and the paired-difference figure."""

from __future__ import annotations

import numpy as np
import pytest

from ser.errors import SerError
from ser.reporting.predictions import Predictions
from ser.reporting.statistics import (_resampled, align, metrics_from_confusion, paired_comparison,
                                      robustness, scores, speaker_bootstrap, speaker_confusions,
                                      utterance_level)


def _predictions(test_set, utterance, block, speaker, label, probs, classes=("a", "b", "c")):
    n = len(label)
    return Predictions(list(classes), np.array(test_set, dtype=object), np.zeros(n, dtype=np.int64),
                       np.array(utterance, dtype=object), np.array(block, dtype=np.int64),
                       np.array(speaker, dtype=object), np.array(label, dtype=np.int64),
                       np.array(probs, dtype=np.float64))


def _dataset(rng, n_speakers, n_items, accuracy, spread, n_classes=4):
    """Items of ``n_speakers`` speakers, each right with its own probability drawn around
    ``accuracy`` (Beta, sd about ``spread``); wrong predictions uniform over the other classes."""
    conc = accuracy * (1 - accuracy) / spread ** 2 - 1
    p = rng.beta(accuracy * conc, (1 - accuracy) * conc, n_speakers)
    speakers = np.repeat(np.array([f"spk{k:02d}" for k in range(n_speakers)], dtype=object), n_items)
    labels = rng.integers(0, n_classes, len(speakers))
    return labels, _system(rng, labels, np.repeat(p, n_items), n_classes), speakers


def _system(rng, labels, right_probability, n_classes=4):
    """Predictions right with probability ``right_probability`` (N,), else another class."""
    right = rng.random(len(labels)) < right_probability
    wrong = (labels + rng.integers(1, n_classes, len(labels))) % n_classes
    return np.where(right, labels, wrong)


def test_scores_of_a_hand_example_skip_absent_classes_in_ua():
    labels, preds = np.array([0, 0, 1, 1, 1]), np.array([0, 3, 1, 1, 0])
    s = scores(labels, preds, 4)
    assert s["ua"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # class 3 predicted, never true: skipped
    assert s["accuracy"] == pytest.approx(3 / 5)
    # F1: class 0 = 2*1/(2+2) = 1/2, class 1 = 2*2/(3+2) = 4/5, weighted by support 2 and 3
    assert s["weighted_f1"] == pytest.approx((2 * 0.5 + 3 * 0.8) / 5)
    assert scores(labels, labels, 4) == {"ua": 1.0, "accuracy": 1.0, "weighted_f1": 1.0}


def test_batched_metrics_equal_per_matrix_scores():
    rng = np.random.default_rng(3)
    cms, expected = [], []
    for _ in range(25):
        labels, preds = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
        labels[labels == 4] = 0  # a class never true
        cms.append(np.bincount(labels * 5 + preds, minlength=25).reshape(5, 5))
        expected.append(scores(labels, preds, 5))
    batched = metrics_from_confusion(np.stack(cms))
    for m in ("ua", "accuracy", "weighted_f1"):
        assert batched[m].shape == (25,)
        np.testing.assert_allclose(batched[m], [e[m] for e in expected], rtol=0, atol=1e-12)
    assert metrics_from_confusion(np.zeros((2, 3, 3)))["ua"].tolist() == [0.0, 0.0]  # no items


def test_a_resample_is_the_items_of_the_drawn_speakers_each_as_often_as_drawn():
    rng = np.random.default_rng(4)
    labels, preds, speakers = _dataset(rng, 6, 9, 0.6, 0.1)
    labels, preds, speakers = labels[5:], preds[5:], speakers[5:]  # unequal speakers
    per_speaker = speaker_confusions(labels, preds, speakers, 4)
    assert per_speaker.shape == (6, 4, 4) and per_speaker.sum() == len(labels)
    counts = np.array([[2, 0, 1, 0, 3, 0], [0, 1, 1, 1, 1, 2]])
    names = np.unique(speakers.astype(str))
    summed = metrics_from_confusion(_resampled(counts.astype(float), per_speaker))
    for b, row in enumerate(counts):
        take = np.concatenate([np.tile(np.nonzero(speakers == s)[0], c) for s, c in zip(names, row)])
        assert summed["ua"][b] == pytest.approx(scores(labels[take], preds[take], 4)["ua"])


def test_speaker_intervals_cover_the_population_accuracy():
    rng = np.random.default_rng(0)
    covered, widths = [], []
    for k in range(200):
        labels, preds, speakers = _dataset(rng, 20, 30, 0.7, 0.1)
        ci = speaker_bootstrap(labels, preds, speakers, 4, metrics=("accuracy",), n_boot=300, seed=k)
        acc = ci["accuracy"]
        assert acc["value"] == pytest.approx(np.mean(labels == preds))
        covered.append(acc["low"] <= 0.7 <= acc["high"])
        widths.append(acc["high"] - acc["low"])
    assert np.mean(covered) >= 0.88, np.mean(covered)
    assert np.mean(widths) < 0.2, np.mean(widths)


def test_speaker_bootstrap_is_deterministic_and_brackets_its_point_estimate():
    labels, preds, speakers = _dataset(np.random.default_rng(5), 15, 20, 0.6, 0.1)
    one = speaker_bootstrap(labels, preds, speakers, 4, n_boot=200, seed=7)
    assert one == speaker_bootstrap(labels, preds, speakers, 4, n_boot=200, seed=7)
    assert one != speaker_bootstrap(labels, preds, speakers, 4, n_boot=200, seed=8)
    assert set(one) == {"ua", "accuracy", "weighted_f1"}
    for m, s in one.items():
        assert s["value"] == pytest.approx(scores(labels, preds, 4)[m])
        assert 0 <= s["low"] < s["value"] < s["high"] <= 1


def test_a_clearly_better_system_is_found_and_exchangeable_ones_are_not():
    rng = np.random.default_rng(1)
    labels, a, speakers = _dataset(rng, 24, 30, 0.6, 0.1)
    fixed = (a != labels) & (rng.random(len(a)) < 0.3)  # b = a with 30 % of its errors fixed
    b = np.where(fixed, labels, a)
    res = paired_comparison(labels, b, a, speakers, 4, n_boot=500, n_perm=500, seed=0)
    assert res["difference"] == pytest.approx(scores(labels, b, 4)["ua"] - scores(labels, a, 4)["ua"])
    assert 0 < res["low"] < res["difference"] < res["high"]
    assert res["p_value"] < 0.01
    assert res["n_speakers"] == 24 and res["n_items"] == 720
    assert res == paired_comparison(labels, b, a, speakers, 4, n_boot=500, n_perm=500, seed=0)
    flipped = paired_comparison(labels, a, b, speakers, 4, n_boot=500, n_perm=500, seed=0)
    assert flipped["difference"] == pytest.approx(-res["difference"]) and flipped["high"] < 0

    same = paired_comparison(labels, a, a, speakers, 4, n_boot=100, n_perm=100, seed=0)
    assert same["difference"] == same["low"] == same["high"] == 0 and same["p_value"] == 1.0

    p_values, contains_zero = [], []
    for seed in range(20):  # two draws of one process: no real difference
        r = np.random.default_rng(100 + seed)
        labels, x, speakers = _dataset(r, 20, 30, 0.6, 0.1)
        # y: the same speaker-level accuracy as x's speakers (each speaker's rate in x)
        per_speaker = {s: np.mean(x[speakers == s] == labels[speakers == s]) for s in set(speakers)}
        y = _system(r, labels, np.array([per_speaker[s] for s in speakers]))
        res = paired_comparison(labels, x, y, speakers, 4, n_boot=300, n_perm=300, seed=seed)
        p_values.append(res["p_value"])
        contains_zero.append(res["low"] <= 0 <= res["high"])
    assert np.mean(np.array(p_values) > 0.05) >= 0.8, p_values
    assert np.mean(contains_zero) >= 0.8


def test_utterance_votes_and_their_tie_break():
    probs = [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.3, 0.4, 0.3],  # u1: votes 0,1,1 -> b
             [0.9, 0.1, 0.0], [0.4, 0.6, 0.0],                     # u2: 1 vote each, mass -> a
             [0.1, 0.1, 0.8],                                      # u3: one block -> c
             [0.1, 0.8, 0.1]]                                      # u1 again, in another test set
    pred = _predictions(["clean"] * 6 + ["0dB"], ["u1", "u1", "u1", "u2", "u2", "u3", "u1"],
                        [0, 1, 2, 0, 1, 0, 0], ["s1"] * 3 + ["s2"] * 2 + ["s3", "s1"],
                        [1, 1, 1, 0, 0, 2, 1], probs)
    utt = utterance_level(pred)
    assert list(zip(utt.test_set, utt.utterance)) == [("clean", "u1"), ("clean", "u2"),
                                                      ("clean", "u3"), ("0dB", "u1")]
    assert utt.predicted.tolist() == [1, 0, 2, 1]
    assert utt.label.tolist() == [1, 0, 2, 1] and utt.speaker.tolist() == ["s1", "s2", "s3", "s1"]
    assert utt.block.tolist() == [0, 0, 0, 0] and utt.extra["n_blocks"].tolist() == [3, 2, 1, 1]
    np.testing.assert_allclose(utt.probs.sum(axis=1), 1.0)


def test_utterance_votes_agree_with_the_training_metric():
    torch = pytest.importorskip("torch")
    from ser.models.metrics import utterance_votes

    rng = np.random.default_rng(2)
    utt_ids = rng.integers(0, 40, 300)
    probs = rng.dirichlet(np.ones(4), 300)
    probs[::7] = np.array([0.3, 0.3, 0.2, 0.2])  # exact ties too
    labels = (utt_ids % 4).astype(np.int64)
    pred = _predictions(["clean"] * 300, [f"u{u}" for u in utt_ids], np.zeros(300), ["s"] * 300,
                        labels, probs, classes=("a", "b", "c", "d"))
    ours = utterance_level(pred)
    theirs, true = utterance_votes(torch.from_numpy(probs), torch.from_numpy(labels), torch.from_numpy(utt_ids))
    by_id = dict(zip(np.unique(utt_ids).tolist(), theirs.tolist()))
    assert ours.predicted.tolist() == [by_id[int(u[1:])] for u in ours.utterance]


def test_align_pairs_the_same_items_and_refuses_different_ones():
    rng = np.random.default_rng(6)
    n = 30
    a = _predictions(["clean"] * 15 + ["0dB"] * 15, [f"u{k % 5}" for k in range(n)],
                     [k // 5 % 3 for k in range(n)], ["s"] * n, rng.integers(0, 3, n),
                     rng.dirichlet(np.ones(3), n))
    b = a.select(rng.permutation(n))
    ia, ib = align(a, b)
    for name in ("test_set", "utterance", "block", "label"):
        assert getattr(a, name)[ia].tolist() == getattr(b, name)[ib].tolist()
    np.testing.assert_array_equal(a.probs[ia], b.probs[ib])

    fewer = b.select(np.arange(n) >= 2)
    with pytest.raises(SerError, match=r"2 \(test set, utterance, block\) item\(s\) are only in the "
                                       r"first and 0 only in the second.*same split plan"):
        align(a, fewer)
    with pytest.raises(SerError, match="more than once"):  # an item twice: no pairing
        align(a, _predictions([*b.test_set, b.test_set[0]], [*b.utterance, b.utterance[0]],
                              [*b.block, b.block[0]], ["s"] * (n + 1), [*b.label, 0],
                              [*b.probs, b.probs[0]]))


def test_robustness_summary():
    r = robustness({"clean": 0.8, "0dB": 0.4, "10dB": 0.5, "20dB": 0.6})
    assert r["noisy_mean"] == pytest.approx(0.5) and r["loss_from_clean"] == pytest.approx(0.3)
    assert robustness({"0dB": 0.4, "20dB": 0.6}) == {"noisy_mean": pytest.approx(0.5), "loss_from_clean": None}
    assert robustness({"clean": 0.8}) == {"noisy_mean": None, "loss_from_clean": None}


def test_the_difference_figure_is_a_png(tmp_path):
    from ser.reporting.difference_figure import paired_difference_figure

    sets = ["Clean", "0 dB", "5 dB", "10 dB", "15 dB", "20 dB", "40 dB"]
    rows = [("efficientnet augmented minus mfcc_svm augmented", sets,
             [12.1, 8.4, 9.0, 10.2, 11.5, 12.0, 12.2], [9.0, 5.1, 6.2, 7.3, 8.8, 9.1, 9.4],
             [15.0, 11.6, 12.1, 13.0, 14.3, 15.2, 15.1]),
            ("efficientnet augmented minus efficientnet clean", sets,
             [-0.8, 14.2, 9.5, 4.1, 1.9, 0.6, 0.1], [-2.9, 10.3, 6.4, 1.5, -0.4, -1.5, -1.9],
             [1.3, 18.0, 12.7, 6.8, 4.2, 2.6, 2.0])]
    path = paired_difference_figure(rows, tmp_path / "out" / "diff.png", "Paired differences of pooled UA")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
