"""Calibration pooled over a sweep's folds: per test set the expected calibration error, NLL and
Brier score with 95 % intervals from speaker resamples, the selective-prediction figures, and one
figure per group (reliability diagram clean ... 0 dB beside the risk-coverage curves).

Intervals resample speakers with replacement as the other pooled figures do
(:mod:`ser.reporting.statistics`): each speaker's per-bin counts and sums are added up with the
resample's weights, so 1,000 resamples cost a few matrix products. Equal-mass ECE and AURC,
which need the items sorted, are given as points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.models.calibration_metrics import ECE_BINS, calibration_metrics, risk_coverage
from ser.reporting.predictions import Predictions
from ser.reporting.statistics import _draw_counts, _interval
from ser.reporting.tables import test_set_label

INTERVAL_METRICS = ("ece", "nll", "brier")
SHOWN = (("ece", "ECE"), ("ece_equal_mass", "ECE (equal mass)"), ("nll", "NLL"), ("brier", "Brier"),
         ("mean_confidence", "Mean confidence"), ("accuracy", "Accuracy"), ("aurc", "AURC"),
         ("coverage_at_90", "Coverage at 90 %"))


def _per_speaker(probs: np.ndarray, labels: np.ndarray, speakers: np.ndarray, bins: int):
    """Per speaker (S, ...): items per confidence bin, summed confidence and correct per bin,
    summed NLL and Brier, items."""
    names, spk = np.unique(speakers, return_inverse=True)
    confidence, correct = probs.max(1), (probs.argmax(1) == labels).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    cell = spk * bins + which
    size = len(names) * bins
    count = np.bincount(cell, minlength=size).reshape(len(names), bins).astype(np.float64)
    conf = np.bincount(cell, confidence, minlength=size).reshape(len(names), bins)
    right = np.bincount(cell, correct, minlength=size).reshape(len(names), bins)
    onehot = np.eye(probs.shape[1])[labels]
    nll = np.bincount(spk, -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)),
                      minlength=len(names))
    brier = np.bincount(spk, ((probs - onehot) ** 2).sum(1), minlength=len(names))
    return count, conf, right, nll, brier


def _from_sums(count, conf, right, nll, brier) -> dict[str, np.ndarray]:
    """The interval metrics from (resampled) sums: any leading shape, bins last for the bins."""
    n = count.sum(-1)
    gap = np.abs(conf - right).sum(-1)  # sum over bins of n_b |mean conf_b - acc_b|
    return {"ece": gap / n, "nll": nll / n, "brier": brier / n}


def pooled_calibration(pred: Predictions, n_boot: int = 1000, seed: int = 0,
                       bins: int = ECE_BINS) -> dict[str, dict]:
    """``[test_set][metric] = {"value", "low", "high"}`` over the pooled blocks (grid blocks:
    windows of ``data.test_hop`` are left out, as block metrics do)."""
    out: dict[str, dict] = {}
    rng = np.random.default_rng(seed)
    for test_set in dict.fromkeys(pred.test_set.tolist()):
        items = (pred.test_set == test_set) & (pred.offset == 0)
        probs, labels, speakers = pred.probs[items].astype(np.float64), pred.label[items], pred.speaker[items]
        sums = _per_speaker(probs, labels, speakers, bins)
        draws = _draw_counts(rng, len(sums[0]), n_boot).astype(np.float64)   # (n_boot, S)
        boot = _from_sums(*(np.tensordot(draws, s, axes=(1, 0)) for s in sums))
        point = calibration_metrics(probs, labels)
        point["accuracy"] = float((probs.argmax(1) == labels).mean())
        # the points of the interval metrics from the same bins as their resamples (every
        # speaker once), so a point never falls outside its interval over a bin-edge rounding
        point.update({k: float(v) for k, v in _from_sums(*(s.sum(0) for s in sums)).items()})
        stats = {k: {"value": float(v)} for k, v in point.items()}
        for metric in INTERVAL_METRICS:
            stats[metric]["low"], stats[metric]["high"] = _interval(boot[metric], 0.95)
        stats["n_items"] = int(items.sum())
        out[str(test_set)] = stats
    return out


def _cell(stat: dict) -> str:
    if "low" in stat:
        return f"{stat['value']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"
    return f"{stat['value']:.3f}"


def calibration_markdown(pooled: dict[str, dict]) -> str:
    """One table per group: a row per test set, a column per calibration figure."""
    parts = []
    for group, sets in pooled.items():
        header = "| Test set | " + " | ".join(title for _, title in SHOWN) + " |"
        rows = [f"| {test_set_label(t)} | " + " | ".join(_cell(s[k]) for k, _ in SHOWN) + " |"
                for t, s in sets.items()]
        parts.append(f"**{group}: calibration of pooled blocks** (ECE: {ECE_BINS} equal-width bins of "
                     "the top probability; [95 % speaker intervals])\n\n"
                     + "\n".join([header, "|---" * (len(SHOWN) + 1) + "|", *rows]))
    return "\n\n".join(parts)


def calibration_figure(pred: Predictions, path: Path, title: str, test_sets: list[str] | None = None,
                       bins: int = 10) -> Path:
    """Reliability diagram (accuracy against confidence per bin, one line per test set) beside
    the risk-coverage curves, for one group's pooled blocks (``test_sets``: which, in order;
    None: all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rel, rc) = plt.subplots(1, 2, figsize=(11, 4.6))
    rel.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
    sets = test_sets or list(dict.fromkeys(pred.test_set.tolist()))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(sets)))
    for test_set, colour in zip(sets, colours):
        items = (pred.test_set == test_set) & (pred.offset == 0)
        probs, labels = pred.probs[items].astype(np.float64), pred.label[items]
        confidence, correct = probs.max(1), probs.argmax(1) == labels
        which = np.minimum((confidence * bins).astype(int), bins - 1)
        used = [b for b in range(bins) if (which == b).sum() >= 5]
        rel.plot([confidence[which == b].mean() for b in used], [correct[which == b].mean() for b in used],
                 marker="o", ms=3, color=colour, label=test_set_label(test_set))
        coverage, risk = risk_coverage(probs, labels)
        rc.plot(coverage, 1 - risk, color=colour, label=test_set_label(test_set))
    rel.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
            title="Reliability (bins with at least 5 blocks)")
    rc.axhline(0.9, color="grey", lw=1, ls="--")
    rc.set(xlabel="coverage (most confident first)", ylabel="selective accuracy", xlim=(0, 1),
           ylim=(0, 1.02), title="Risk-coverage")
    rel.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def group_calibration(groups, predictions: dict[str, Predictions | None], out_dir: Path,
                      n_boot: int = 1000, seed: int = 0) -> tuple[dict[str, dict], list[str]]:
    """Each group's :func:`pooled_calibration` and its figure (own-corpus test sets) in
    ``out_dir/calibration_<group>.png``, from its pooled ``predictions`` (by label; groups
    without them are left out)."""
    from ser.set_names import is_own_set

    pooled, figures = {}, []
    for group in groups:
        pred = predictions.get(group.label)
        if pred is None:
            continue
        pooled[group.label] = pooled_calibration(pred, n_boot, seed)
        recorded = group.recorded_test_sets
        own = [t for t in dict.fromkeys(pred.test_set.tolist()) if is_own_set(t, recorded)]
        slug = "".join(c if c.isalnum() or c in "-." else "_" for c in group.label)[:80]
        figures.append(str(calibration_figure(pred, Path(out_dir) / f"calibration_{slug}.png",
                                              f"{group.label}: pooled blocks of folds "
                                              f"{', '.join(map(str, group.folds))}", own)))
    return pooled, figures
