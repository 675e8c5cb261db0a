"""Statistics of pooled test predictions, with speakers as the unit of independence (numpy only).

Under leave-one-speaker-group-out cross-validation every utterance is tested once over the
folds, so all folds' predictions pool into one test of the corpus. Blocks (and utterances) of
one speaker are not independent draws: a speaker's voice, microphone and acting style move all
of them together. Intervals therefore resample *speakers* with replacement (all items of a
drawn speaker come along), and two systems are compared with a paired permutation test that
swaps whole speakers. Everything goes through per-speaker confusion matrices (S, C, C): a
resample is a weighted sum of them, so thousands of resamples cost a few matrix products.

Confusion matrices here have rows = true class, columns = predicted class, counts of items.
Metrics are fractions in [0, 1]; UA averages the recalls of the classes present in the labels
only, as :mod:`ser.models.metrics` does.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ser.errors import SerError
from ser.reporting.predictions import Predictions

METRICS = ("ua", "accuracy", "weighted_f1")
CLEAN = "clean"


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """UA, accuracy and weighted F1 of confusion matrices ``cm`` (..., C, C) -> arrays (...,).

    Vectorised over any leading batch axes, so a bootstrap's (B, C, C) resampled matrices are
    scored at once. A matrix without items scores 0.0 (as ``block_metrics`` does)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)              # (..., C)
    support = cm.sum(axis=-1)                              # true items per class (..., C)
    predicted = cm.sum(axis=-2)                            # predicted items per class (..., C)
    total = support.sum(axis=-1)                           # (...,)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    n_present = present.sum(axis=-1)
    ua = np.divide(recall.sum(axis=-1), n_present, out=np.zeros_like(total), where=n_present > 0)
    accuracy = np.divide(tp.sum(axis=-1), total, out=np.zeros_like(total), where=total > 0)
    denom = support + predicted                            # F1 = 2 TP / (true + predicted)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    weighted_f1 = np.divide((f1 * support).sum(axis=-1), total, out=np.zeros_like(total),
                            where=total > 0)
    return {"ua": ua, "accuracy": accuracy, "weighted_f1": weighted_f1}


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """The (C, C) count matrix of class ids ``labels`` and ``predicted`` (N,)."""
    code = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(code, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, float]:
    """``ua``, ``accuracy`` and ``weighted_f1`` of class ids ``predicted`` against ``labels``
    (N,), fractions in [0, 1]; UA skips classes absent from ``labels``."""
    return {k: float(v) for k, v in metrics_from_confusion(confusion(labels, predicted, n_classes)).items()}


def speaker_confusions(labels: np.ndarray, predicted: np.ndarray, speakers: np.ndarray,
                       n_classes: int) -> np.ndarray:
    """One confusion matrix per speaker: (S, C, C) counts, speakers in sorted order."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if not (len(labels) == len(predicted) == len(speakers)):
        raise ValueError(f"labels, predictions and speakers differ in length: {len(labels)}, "
                         f"{len(predicted)}, {len(speakers)}")
    if len(labels) == 0:
        raise ValueError("no items to score")
    _, spk = np.unique(np.asarray(speakers).astype(str), return_inverse=True)
    n_spk = int(spk.max()) + 1
    code = (spk.reshape(-1) * n_classes + labels) * n_classes + predicted
    return np.bincount(code, minlength=n_spk * n_classes * n_classes).reshape(n_spk, n_classes, n_classes)


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _draw_counts(rng: np.random.Generator, n_speakers: int, n_boot: int) -> np.ndarray:
    """(B, S) float: how often each speaker is drawn in each of ``n_boot`` resamples of S."""
    return rng.multinomial(n_speakers, np.full(n_speakers, 1.0 / n_speakers), size=n_boot).astype(np.float64)


def _resampled(weights: np.ndarray, per_speaker: np.ndarray) -> np.ndarray:
    """(B, S) weights times (S, C, C) matrices -> (B, C, C) summed matrices."""
    s, c, _ = per_speaker.shape
    return (weights @ per_speaker.reshape(s, c * c).astype(np.float64)).reshape(-1, c, c)


def speaker_bootstrap(labels: np.ndarray, predicted: np.ndarray, speakers: np.ndarray, n_classes: int,
                      metrics: Sequence[str] = METRICS, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, dict]:
    """``{metric: {"value", "low", "high"}}``: each metric on all items (N,) with its
    percentile interval over ``n_boot`` resamples of speakers with replacement (a speaker drawn
    twice counts twice). Deterministic for a given ``seed``."""
    per_speaker = speaker_confusions(labels, predicted, speakers, n_classes)
    point = metrics_from_confusion(per_speaker.sum(axis=0))
    rng = np.random.default_rng(seed)
    boot = metrics_from_confusion(_resampled(_draw_counts(rng, len(per_speaker), n_boot), per_speaker))
    out = {}
    for m in metrics:
        low, high = _interval(boot[m], level)
        out[m] = {"value": float(point[m]), "low": low, "high": high}
    return out


def paired_comparison(labels: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray,
                      speakers: np.ndarray, n_classes: int, metric: str = "ua", n_boot: int = 1000,
                      n_perm: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """System a minus system b on the same items (N,), in the same order.

    ``difference``: metric(a) - metric(b) on all items; ``low``/``high``: its percentile
    interval over speaker resamples (the same resample for both systems); ``p_value``: a
    two-sided paired permutation test where each speaker's predictions of a and b are swapped
    as a block with probability 1/2, p = (1 + #{|d_perm| >= |d_obs|}) / (1 + n_perm)."""
    cm_a = speaker_confusions(labels, predicted_a, speakers, n_classes)
    cm_b = speaker_confusions(labels, predicted_b, speakers, n_classes)
    n_spk = len(cm_a)
    diff = lambda x, y: metrics_from_confusion(x)[metric] - metrics_from_confusion(y)[metric]  # noqa: E731
    observed = float(diff(cm_a.sum(axis=0), cm_b.sum(axis=0)))
    rng = np.random.default_rng(seed)
    counts = _draw_counts(rng, n_spk, n_boot)
    low, high = _interval(diff(_resampled(counts, cm_a), _resampled(counts, cm_b)), level)
    # swapping speaker s moves (b_s - a_s) from b's sum to a's: a' = A + w @ (b - a), b' = B - ...
    swaps = (rng.random((n_perm, n_spk)) < 0.5).astype(np.float64)
    moved = _resampled(swaps, cm_b - cm_a)
    perm = diff(cm_a.sum(axis=0) + moved, cm_b.sum(axis=0) - moved)
    extreme = int(np.sum(np.abs(perm) >= abs(observed) - 1e-12))  # ties count as extreme
    return {"difference": observed, "low": low, "high": high,
            "p_value": (1 + extreme) / (1 + n_perm), "n_speakers": n_spk, "n_items": int(len(labels))}


def _first_order_groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by the tuple of ``columns``: (first row of each group, in order of first
    appearance (G,); each row's group (N,))."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        _, inv = np.unique(np.asarray(col).astype(str), return_inverse=True)
        code = code * (int(inv.max()) + 1 if len(inv) else 1) + inv.reshape(-1)
        code = np.unique(code, return_inverse=True)[1].reshape(-1)  # back to 0..G-1: no overflow
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inv.reshape(-1)]


def utterance_level(pred: Predictions) -> Predictions:
    """One row per (test_set, utterance): its blocks vote (each block's argmax), ties broken by
    summed probability, as :func:`ser.models.metrics.utterance_votes` does.

    The row's ``probs`` (U, C) are votes + summed probability / (n_blocks + 1), normalised to
    sum to 1: their argmax is the voted class. Label, speaker and fold are the utterance's;
    ``block`` is 0 (so that :func:`align` pairs utterances of two systems by id even if they cut
    different numbers of blocks); ``extra["n_blocks"]`` (U,) holds each utterance's block count."""
    n_classes = len(pred.classes)
    first, group = _first_order_groups(pred.test_set, pred.utterance)
    n_utt = len(first)
    if np.any(pred.label != pred.label[first][group]):
        raise SerError("Blocks of one utterance carry different true classes in these predictions; "
                       "the predictions file is damaged. Re-run evaluate.py ckpt=RUN to write it again.")
    votes = np.bincount(group * n_classes + pred.predicted, minlength=n_utt * n_classes)
    votes = votes.reshape(n_utt, n_classes).astype(np.float64)
    mass = np.stack([np.bincount(group, weights=pred.probs[:, c], minlength=n_utt)
                     for c in range(n_classes)], axis=1)
    n_blocks = np.bincount(group, minlength=n_utt)
    score = votes + mass / (n_blocks[:, None] + 1.0)  # a vote outweighs any summed probability
    probs = score / score.sum(axis=1, keepdims=True)
    out = Predictions(pred.classes, pred.test_set[first], pred.fold[first], pred.utterance[first],
                      np.zeros(n_utt, dtype=np.int64), pred.speaker[first], pred.label[first], probs,
                      text=None if pred.text is None else pred.text[first])
    out.extra["n_blocks"] = n_blocks
    return out


def align(a: Predictions, b: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (N,) with a[ia] and b[ib] the same (test_set, utterance, block) items, in
    a's order; a clear :class:`SerError` if the two hold different items (or an item twice)."""
    keys = [np.concatenate([np.asarray(getattr(a, k)).astype(str), np.asarray(getattr(b, k)).astype(str)])
            for k in ("test_set", "utterance", "block", "offset")]
    _, group = _first_order_groups(*keys)
    code_a, code_b = group[:len(a)], group[len(a):]
    for name, code in (("first", code_a), ("second", code_b)):
        if len(np.unique(code)) != len(code):
            raise SerError(f"The {name} group's predictions hold some (test set, utterance, block) "
                           "items more than once, so they cannot be paired item by item; pool "
                           "only folds that test each utterance once (split=loso).")
    only_a = np.setdiff1d(code_a, code_b)
    only_b = np.setdiff1d(code_b, code_a)
    if len(only_a) or len(only_b):
        where = np.nonzero(np.isin(code_a, only_a))[0] if len(only_a) else \
            len(a) + np.nonzero(np.isin(code_b, only_b))[0]
        k = int(where[0])
        example = f"{keys[0][k]}, utterance {keys[1][k]}, block {keys[2][k]}"
        raise SerError(f"The two groups were not tested on the same items: {len(only_a)} "
                       f"(test set, utterance, block) item(s) are only in the first and "
                       f"{len(only_b)} only in the second (e.g. {example}), so they cannot be "
                       "compared pairwise. Paired comparisons need two groups from sweeps with "
                       "the same split plan (split, folds and split seed) and the same test sets.")
    order_b = np.argsort(code_b, kind="stable")
    ib = order_b[np.searchsorted(code_b[order_b], code_a)]
    return np.arange(len(a)), ib


def robustness(values: Mapping[str, float | None]) -> dict[str, float | None]:
    """ROBUSER's corruption-error summary of a metric per test set name (``clean``, ``0dB``,
    ...; one corpus's sets, no ``<corpus>/<snr>`` ones): ``noisy_mean``, the mean over the sets
    other than ``clean``, and ``loss_from_clean``, clean minus that mean; None where there is no
    clean or no noisy set (missing or NaN values are left out)."""
    usable = {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}
    noisy = [v for k, v in usable.items() if k != CLEAN]
    noisy_mean = float(np.mean(noisy)) if noisy else None
    clean = usable.get(CLEAN)
    loss = clean - noisy_mean if clean is not None and noisy_mean is not None else None
    return {"noisy_mean": noisy_mean, "loss_from_clean": loss}


def paired_nll(labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, speakers: np.ndarray,
               n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean negative log-likelihood of the true class (nats) of system a minus system b on the
    same items (N,), with its percentile interval over speaker resamples: ``{"difference",
    "low", "high"}``. Below zero: a's probabilities are the better forecasts."""
    rows = np.arange(len(labels))
    diff = (-np.log(np.clip(probs_a[rows, labels], 1e-12, None))
            + np.log(np.clip(probs_b[rows, labels], 1e-12, None)))
    names, spk = np.unique(speakers, return_inverse=True)
    sums = np.bincount(spk, diff, minlength=len(names))
    counts = np.bincount(spk, minlength=len(names)).astype(np.float64)
    draws = _draw_counts(np.random.default_rng(seed), len(names), n_boot)
    low, high = _interval((draws @ sums) / (draws @ counts), level)
    return {"difference": float(diff.mean()), "low": low, "high": high}
