"""How far a model's stated confidence is from how often it is right, and what abstaining buys.

For (N, C) class probabilities and (N,) true labels:

* expected calibration error (ECE) of the top probability, with equal-width bins (torchmetrics'
  ``multiclass_calibration_error``, the usual definition) and with equal-mass bins (each bin
  holds the same number of items, so sparse high-confidence bins do not dominate);
* negative log-likelihood (mean -log p of the true class, nats) and the multiclass Brier score
  (mean over items of the squared distance between the probability vector and the one-hot
  label, in [0, 2]);
* selective prediction: the risk-coverage curve (items answered in order of falling top
  probability; risk = error rate among those answered), its area (AURC, lower is better) and the
  largest coverage whose selective accuracy reaches a stated level (e.g. 0.9).

Every figure is a plain float, so it goes to metrics.json beside accuracy and UA.
"""

from __future__ import annotations

import numpy as np
import torch

ECE_BINS = 15          # the common choice (Guo et al. 2017)
SELECTIVE_ACCURACY = 0.9


def _arrays(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = probs.detach().cpu().double().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, np.float64)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return p, y.astype(np.int64)


def ece_equal_width(probs, labels, bins: int = ECE_BINS) -> float:
    """ECE of the top probability over ``bins`` equal-width confidence bins (torchmetrics)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p, y = _arrays(probs, labels)
    if len(y) == 0:
        return float("nan")
    return float(multiclass_calibration_error(torch.from_numpy(p).float(), torch.from_numpy(y),
                                              num_classes=p.shape[1], n_bins=bins, norm="l1"))


def ece_equal_mass(probs, labels, bins: int = ECE_BINS) -> float:
    """ECE of the top probability over ``bins`` bins holding equal numbers of items (sorted by
    confidence): sum over bins of (bin share) x |mean confidence - accuracy|."""
    p, y = _arrays(probs, labels)
    if len(y) == 0:
        return float("nan")
    confidence, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    order = np.argsort(confidence, kind="stable")
    total = 0.0
    for part in np.array_split(order, min(bins, len(order))):
        total += len(part) * abs(confidence[part].mean() - correct[part].mean())
    return float(total / len(y))


def nll(probs, labels, floor: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class (nats)."""
    p, y = _arrays(probs, labels)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], floor, None)).mean()) if len(y) else float("nan")


def brier(probs, labels) -> float:
    """Multiclass Brier score: mean over items of sum over classes of (p - onehot)^2, in [0, 2]."""
    p, y = _arrays(probs, labels)
    if len(y) == 0:
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(((p - onehot) ** 2).sum(1).mean())


def risk_coverage(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk), each (N,): answering the k most confident items (k = 1..N), the share
    answered and the error rate among them. Ties in confidence are answered together."""
    p, y = _arrays(probs, labels)
    confidence, wrong = p.max(1), (p.argmax(1) != y).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    errors = np.cumsum(wrong[order])
    counts = np.arange(1, len(y) + 1, dtype=np.float64)
    # within a run of equal confidences, every prefix takes the whole run's errors
    last = np.r_[np.flatnonzero(np.diff(confidence[order]) != 0), len(y) - 1]
    run_end = np.repeat(last, np.diff(np.r_[-1, last]))
    return counts / len(y), errors[run_end] / counts[run_end]


def threshold_for_accuracy(probs, labels, accuracy: float = SELECTIVE_ACCURACY) -> float | None:
    """The lowest top probability at which the items at or above it are right at least
    ``accuracy`` of the time (the risk-coverage curve read at that accuracy): a model's own
    abstention threshold, chosen on its validation part. None where every item may be answered;
    just above the highest top probability where even the most confident item is wrong."""
    p, _ = _arrays(probs, labels)
    coverage, risk = risk_coverage(probs, labels)
    if not len(risk):
        return None
    ok = np.flatnonzero(1.0 - risk >= accuracy - 1e-12)
    if len(ok) and ok[-1] == len(risk) - 1:
        return None
    confidence = np.sort(p.max(axis=1))[::-1]
    if not len(ok):
        return float(np.nextafter(confidence[0], 1.0))
    return float(confidence[ok[-1]])


def aurc(probs, labels) -> float:
    """Area under the risk-coverage curve (mean selective risk over coverages 1/N .. 1)."""
    _, risk = risk_coverage(probs, labels)
    return float(risk.mean()) if len(risk) else float("nan")


def coverage_at_accuracy(probs, labels, accuracy: float = SELECTIVE_ACCURACY) -> float:
    """The largest share of items that can be answered (most confident first) with selective
    accuracy at least ``accuracy``; 0 where even the most confident item is wrong."""
    coverage, risk = risk_coverage(probs, labels)
    ok = np.flatnonzero(1.0 - risk >= accuracy - 1e-12)
    return float(coverage[ok[-1]]) if len(ok) else 0.0


def calibration_metrics(probs, labels) -> dict[str, float]:
    """metrics.json's calibration keys of one test set."""
    return {"ece": ece_equal_width(probs, labels), "ece_equal_mass": ece_equal_mass(probs, labels),
            "nll": nll(probs, labels), "brier": brier(probs, labels), "aurc": aurc(probs, labels),
            "coverage_at_90": coverage_at_accuracy(probs, labels, SELECTIVE_ACCURACY),
            "mean_confidence": float(_arrays(probs, labels)[0].max(1).mean()) if len(labels) else float("nan")}
