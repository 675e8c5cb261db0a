"""Pooled results of a sweep: every fold's test predictions together, with speaker intervals.

Under ``split=loso`` each utterance is tested exactly once over the folds, so the groups' test
predictions (``predictions.csv`` of each run) pool into one test of the whole corpus. Pooled UA
is the sweep's headline: it weighs every speaker's blocks once, where a mean over folds weighs
a fold of few blocks as much as a large one. Intervals resample speakers, the unit of
independence (blocks of one speaker are not independent draws), and two groups tested on the
same items are compared pairwise: the difference of their pooled UA with its interval and a
permutation p-value over speakers.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ser.errors import SerError
from ser.reporting.predictions import Predictions, read_predictions
from ser.reporting.statistics import (align, paired_comparison, paired_nll, robustness,
                                      speaker_bootstrap, utterance_level)
from ser.reporting.sweep_summary import RunGroup
from ser.reporting.shared_text import LEVEL as SHARED_TEXT, LEVEL_NAME as SHARED_TEXT_NAME
from ser.reporting.shared_text import SUBSET_NAME, shared_text_items
from ser.reporting.tables import NOISY_MEAN, test_set_label
from ser.run_layout import PREDICTIONS_FILE
from ser.set_names import condition, is_own_set

LEVELS = ("block", "utterance", SHARED_TEXT)
LEVEL_NAMES = {"block": "block level", "utterance": "utterance level", SHARED_TEXT: SHARED_TEXT_NAME}
POOLED_METRICS = ("ua", "accuracy", "weighted_f1")


def group_predictions(group: RunGroup) -> tuple[Predictions | None, str]:
    """All runs' test predictions of ``group`` as one table, or (None, why not): a run without
    predictions.csv (written before it existed: evaluate.py ckpt=RUN writes one), or folds that
    test the same blocks (split=paper and split=utterance keep one test set for every fold).

    Another corpus's test sets (``urdu/clean``: ``data.test_corpora``) are tested whole by every
    fold's model; pooled, each of its utterances counts once per fold (the folds' models on the
    same speakers, their mean), so its utterance ids get the fold appended and the intervals
    resample that corpus's speakers with all their folds' predictions."""
    missing = [r.path for r in group.runs if not (Path(r.path) / PREDICTIONS_FILE).is_file()]
    if missing:
        return None, (f"{len(missing)} run(s) without {PREDICTIONS_FILE} (e.g. {missing[0]}); "
                      f"`evaluate.py ckpt=RUN` writes one")
    pred = Predictions.concat([read_predictions(Path(r.path) / PREDICTIONS_FILE) for r in group.runs])
    recorded = group.recorded_test_sets
    for test_set in np.unique(pred.test_set):
        items = pred.test_set == test_set
        keys = list(zip(pred.utterance[items], pred.block[items], pred.offset[items]))
        if len(set(keys)) == len(keys):
            continue
        if not is_own_set(test_set, recorded) and len(set(zip(keys, pred.fold[items]))) == len(keys):
            pred.utterance[items] = [f"{u}@fold{f}" for u, f in zip(pred.utterance[items], pred.fold[items])]
        else:
            return None, (f"its folds test some blocks of {test_set} more than once, so their "
                          "predictions do not pool into one test of the corpus (split=loso tests "
                          "each utterance once over its folds)")
    return pred, ""


def _levels(pred: Predictions, test_set: str) -> dict[str, Predictions]:
    """The test set's items at each level; ``shared_text`` only where the corpus names texts
    and some text is spoken in more than one class (:mod:`ser.reporting.shared_text`)."""
    part = pred.select(pred.test_set == test_set)
    levels = {"block": part.grid(), "utterance": utterance_level(part)}
    shared = shared_text_items(levels["block"])
    if shared is not None:
        levels[SHARED_TEXT] = shared
    return levels


def pooled_group(pred: Predictions, n_boot: int, seed: int,
                 recorded: Mapping[str, dict] | None = None) -> dict[str, dict]:
    """``[level][test_set][metric] = {"value", "low", "high"}`` plus item and speaker counts;
    ``[level]["robustness"]``: the noisy mean and the loss from clean of pooled UA."""
    n_classes = len(pred.classes)
    out: dict[str, dict] = {level: {} for level in LEVELS}
    for test_set in dict.fromkeys(pred.test_set.tolist()):
        for level, part in _levels(pred, test_set).items():
            stats = speaker_bootstrap(part.label, part.predicted, part.speaker, n_classes,
                                      metrics=POOLED_METRICS, n_boot=n_boot, seed=seed)
            stats.update(n_items=int(len(part)), n_speakers=int(len(np.unique(part.speaker))))
            out[level][str(test_set)] = stats
    for level in LEVELS:
        if not out[level]:   # no test set of this group has items at this level
            del out[level]
            continue
        ua = {t: s["ua"]["value"] for t, s in out[level].items() if is_own_set(t, recorded)}
        out[level]["robustness"] = robustness(ua)
    return out


def _order(a: RunGroup, b: RunGroup) -> tuple[RunGroup, RunGroup]:
    """Networks before baselines, augmented before clean-trained: the difference reads as
    'how much better is the first'."""
    rank = lambda g: (g.is_baseline, g.regime != "augmented")  # noqa: E731
    return (a, b) if rank(a) <= rank(b) else (b, a)


def comparable(a: RunGroup, b: RunGroup) -> bool:
    """Two groups of one corpus with at least one fold in common (compared on those folds)."""
    return a.dataset == b.dataset and bool(shared_folds(a, b))


# not_compared's level for two groups whose noisy test sets were mixed with different noise files
NOISY_UNPAIRED = "noisy test sets"


def noise_differs(a: RunGroup, b: RunGroup, folds: Sequence[int]) -> list[int]:
    """The ``folds`` on which ``a`` and ``b`` mixed their test blocks with different noise files
    (run.json's ``test_noise``; runs from before it was recorded are taken to agree): one
    sweep with ``noise.per_fold`` and one without, or another noise folder. Their noisy test
    sets hold the same blocks but not the same mixtures, so only the clean ones pair."""
    def noise(group: RunGroup) -> dict[int, str]:
        return {int(r.record.get("fold", -1)): str(r.record["test_noise"])
                for r in group.runs if r.record.get("test_noise")}
    na, nb = noise(a), noise(b)
    return [f for f in folds if f in na and f in nb and na[f] != nb[f]]


def shared_folds(a: RunGroup, b: RunGroup) -> list[int]:
    """The folds both groups ran: a lever screened on folds 0-2 pairs with a five-fold group on
    those three folds' speakers."""
    return sorted(set(a.folds) & set(b.folds))


def _on_folds(pred: Predictions, folds: list[int]) -> Predictions:
    return pred.select(np.isin(pred.fold, folds))


def _folds_note(comparison: dict) -> str:
    """`` (folds 0, 1 only)`` for a comparison made on the folds two groups share, else ''."""
    folds = comparison.get("folds")
    return f" (folds {', '.join(map(str, folds))} only)" if folds else ""


def compare_groups(a: RunGroup, pa: Predictions, b: RunGroup, pb: Predictions, n_boot: int,
                   n_perm: int, seed: int, clean_only: bool = False) -> tuple[list[dict], list[dict]]:
    """Paired UA differences of ``a`` minus ``b`` per shared test set and level, and
    ``{"a", "b", "level", "why"}`` for each level whose items do not pair. Groups tested on
    different blocks of the same utterances (a re-test on the blocks ``data.min_speech`` keeps)
    still pair by utterance: each utterance's decision from its own blocks. ``clean_only``: only
    the clean test sets (the two were mixed with different noise: :func:`noise_differs`)."""
    if pa.classes != pb.classes:
        return [], [{"a": a.label, "b": b.label, "level": "all", "why": "different classes"}]
    rows, failed = [], {}
    shared = [t for t in dict.fromkeys(pa.test_set.tolist()) if t in set(pb.test_set.tolist())]
    if clean_only:
        recorded = {**b.recorded_test_sets, **a.recorded_test_sets}
        shared = [t for t in shared if condition(str(t), recorded) == "clean"]
    for test_set in shared:
        la, lb = _levels(pa, test_set), _levels(pb, test_set)
        for level in LEVELS:
            if level in failed or level not in la or level not in lb:
                continue
            try:
                ia, ib = align(la[level], lb[level])
            except SerError as exc:  # e.g. another seed's folds: not the same test items
                failed[level] = str(exc)
                continue
            x, y = la[level], lb[level]
            result = paired_comparison(x.label[ia], x.predicted[ia], y.predicted[ib], x.speaker[ia],
                                       len(pa.classes), metric="ua", n_boot=n_boot, n_perm=n_perm,
                                       seed=seed)
            row = {"a": a.label, "b": b.label, "test_set": str(test_set), "level": level,
                   "metric": "ua", "own_corpus": is_own_set(str(test_set), a.recorded_test_sets), **result}
            if level == "block":  # how much better a's probabilities forecast: paired NLL
                row["nll"] = paired_nll(x.label[ia], x.probs[ia], y.probs[ib], x.speaker[ia], n_boot, seed)
            rows.append(row)
    return rows, [{"a": a.label, "b": b.label, "level": level, "why": why} for level, why in failed.items()]


def headline_pairs(groups: Sequence[RunGroup]) -> list[tuple[str, str]]:
    """The comparisons the figure draws: each network against each baseline trained the same
    way (same regime), and augmented against clean-trained for the same model: every
    ``model.*`` setting equal (eGeMAPS and ComParE are two models of one ``model.name``)."""
    pairs = []
    for a, b in combinations(groups, 2):
        a, b = _order(a, b)
        keys = {k for k in (*a.settings, *b.settings) if k.startswith("model.")}
        same_model = all(a.settings.get(k) == b.settings.get(k) for k in keys)
        if (not a.is_baseline and b.is_baseline and a.regime == b.regime) or \
                (same_model and {a.regime, b.regime} == {"augmented", "clean"}):
            pairs.append((a.label, b.label))
    return pairs


def pooled_summary(groups: Sequence[RunGroup], n_boot: int = 1000, n_perm: int = 1000,
                   seed: int = 0, found: dict[str, tuple[Predictions | None, str]] | None = None
                   ) -> dict[str, Any]:
    """Pooled statistics of every group that has predictions, and the paired comparisons of
    every two comparable groups (JSON-ready). ``found``: each group's :func:`group_predictions`
    where the caller has read them already."""
    found = found if found is not None else {g.label: group_predictions(g) for g in groups}
    preds = {label: p for label, (p, _) in found.items()}
    by_label = {g.label: g for g in groups}
    pooled = {label: pooled_group(p, n_boot, seed, by_label[label].recorded_test_sets)
              for label, p in preds.items() if p is not None}
    comparisons: list[dict] = []
    not_compared: list[dict] = []
    for a, b in combinations([g for g in groups if preds[g.label] is not None], 2):
        if comparable(a, b):
            a, b = _order(a, b)
            folds = shared_folds(a, b)
            differ = noise_differs(a, b, folds)
            rows, failures = compare_groups(a, _on_folds(preds[a.label], folds), b,
                                            _on_folds(preds[b.label], folds), n_boot, n_perm, seed,
                                            clean_only=bool(differ))
            if differ:
                failures.append({"a": a.label, "b": b.label, "level": NOISY_UNPAIRED,
                                 "why": f"their test blocks were mixed with different noise files on "
                                        f"fold(s) {', '.join(map(str, differ))} (one sweep drew the noise "
                                        "per fold, noise.per_fold, and the other not, or their noise "
                                        "folders differ), so only the clean test sets are paired"})
            if folds != a.folds or folds != b.folds:   # said in the table: not every fold's speakers
                for row in rows:
                    row["folds"] = folds
            comparisons += rows
            not_compared += failures
    return {"groups": pooled, "comparisons": comparisons, "not_compared": not_compared,
            "headline_pairs": [p for p in headline_pairs(groups)
                               if p[0] in pooled and p[1] in pooled and comparable(by_label[p[0]], by_label[p[1]])],
            "not_pooled": {label: why for label, (p, why) in found.items() if p is None},
            "n_boot": n_boot, "n_perm": n_perm, "seed": seed}


def _cell(stat: dict) -> str:
    return f"{100 * stat['value']:.1f} [{100 * stat['low']:.1f}, {100 * stat['high']:.1f}]"


def pooled_markdown(pooled: dict, level: str = "block", metric: str = "ua") -> str:
    """Groups × test sets: the pooled metric with its 95 % speaker interval, then the noisy mean
    and the loss from clean."""
    groups = {label: g for label, g in pooled["groups"].items() if level in g}
    if not groups:
        return ""
    test_sets: list[str] = []
    for g in groups.values():
        test_sets += [t for t in g[level] if t != "robustness" and t not in test_sets]
    header = ["Group", *(test_set_label(t) for t in test_sets), test_set_label(NOISY_MEAN), "Loss from clean"]
    lines = [f"**Pooled {metric.upper() if metric == 'ua' else metric} ({LEVEL_NAMES[level]}, %, all folds' "
             f"test predictions together; [95 % interval, speakers resampled {pooled['n_boot']}x])**",
             "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for label, g in groups.items():
        cells = [_cell(g[level][t][metric]) if t in g[level] else "" for t in test_sets]
        rob = g[level]["robustness"]
        cells += [f"{100 * rob['noisy_mean']:.1f}" if rob.get("noisy_mean") is not None else "",
                  f"{100 * rob['loss_from_clean']:.1f}" if rob.get("loss_from_clean") is not None else ""]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons_markdown(pooled: dict, level: str = "block") -> str:
    """Headline pairs (all compared pairs when there is none) × test sets: the UA difference,
    its interval and the permutation p-value. summary.json holds every compared pair."""
    rows = [c for c in pooled["comparisons"] if c["level"] == level]
    headline = {tuple(p) for p in pooled.get("headline_pairs") or []}
    if headline:
        rows = [c for c in rows if (c["a"], c["b"]) in headline]
    if not rows:
        return ""
    test_sets = list(dict.fromkeys(c["test_set"] for c in rows))
    pairs = list(dict.fromkeys((c["a"], c["b"]) for c in rows))
    cells = {(c["a"], c["b"], c["test_set"]): c for c in rows}
    notes = {(c["a"], c["b"]): _folds_note(c) for c in rows}
    lines = [f"**Paired differences of pooled UA ({LEVEL_NAMES[level]}, percentage points, first minus "
             f"second: difference [95 % interval from {pooled['n_boot']} speaker resamples] p from "
             f"{pooled['n_perm']} speaker-wise swaps)**", "",
             "| First | Second | " + " | ".join(test_set_label(t) for t in test_sets) + " |",
             "|---|---|" + "---:|" * len(test_sets)]
    for a, b in pairs:
        shown = []
        for t in test_sets:
            c = cells.get((a, b, t))
            shown.append("" if c is None else f"{100 * c['difference']:+.1f} [{100 * c['low']:+.1f}, "
                         f"{100 * c['high']:+.1f}] p={c['p_value']:.3f}")
        lines.append(f"| {a} | {b}{notes[a, b]} | " + " | ".join(shown) + " |")
    if level == "block" and any("nll" in c for c in rows):
        lines += ["", "**Paired differences of the pooled blocks' NLL (nats, first minus second; below "
                  "zero: the first's probabilities forecast better) [95 % speaker interval]**", "",
                  "| First | Second | " + " | ".join(test_set_label(t) for t in test_sets) + " |",
                  "|---|---|" + "---:|" * len(test_sets)]
        for a, b in pairs:
            shown = [f"{c['nll']['difference']:+.3f} [{c['nll']['low']:+.3f}, {c['nll']['high']:+.3f}]"
                     if (c := cells.get((a, b, t))) is not None and "nll" in c else "" for t in test_sets]
            lines.append(f"| {a} | {b}{notes[a, b]} | " + " | ".join(shown) + " |")
    unpaired = [f"Only the clean test sets pair {c['a']} with {c['b']}: {c['why']}."
                for c in pooled.get("not_compared") or []
                if c.get("level") == NOISY_UNPAIRED and (c["a"], c["b"]) in pairs]
    if unpaired:
        lines += ["", *unpaired]
    return "\n".join(lines)


def draw_differences(pooled: dict, out_dir: Path, level: str = "block") -> Path | None:
    """``paired_differences.png``: each headline pair's UA difference per test set with its
    interval, and at block level a second panel on the texts several classes speak where the
    corpus names texts; no pair, no figure (an old one removed)."""
    from ser.reporting.difference_figure import paired_difference_figure

    path = Path(out_dir) / "paired_differences.png"
    rows = []
    for a, b in pooled["headline_pairs"]:
        for shown in ((level, SHARED_TEXT) if level == "block" else (level,)):
            found = [c for c in pooled["comparisons"]
                     if c["a"] == a and c["b"] == b and c["level"] == shown
                     and c.get("own_corpus", is_own_set(c["test_set"]))]
            if found:
                what = "" if shown == level else f" ({SUBSET_NAME})"
                rows.append((f"{a} minus {b}{_folds_note(found[0])}{what}",
                             [test_set_label(c["test_set"]) for c in found], [100 * c["difference"] for c in found],
                             [100 * c["low"] for c in found], [100 * c["high"] for c in found]))
    if not rows:
        path.unlink(missing_ok=True)
        return None
    return paired_difference_figure(rows, path, title=f"Paired differences of pooled UA ({level} "
                                    "level), 95 % speaker intervals", metric_label="UA")
