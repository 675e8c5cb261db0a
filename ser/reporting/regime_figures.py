"""The figures of ``evaluate.py sweep=DIR``: the paper's Figures 4/5 and the speech encoders'
layer weights.

Within a sweep, groups that differ only in the training regime keys (``snr`` ...) form a
family; a family holding clean-trained and noise-augmented groups gets one bar chart of the
chosen metric per test set, the regimes side by side, error bars = std over folds, and, for a
corpus the paper reports (AHSN, AESN), the paper's own numbers as hatched bars (its Figure 6
style comparison; numbers from conf/paper_reference.yaml). The ``model=mfcc_svm`` baseline's
family, trained on the same data, is drawn in each network's figure as dotted bars. Kept apart
from :mod:`ser.reporting.sweep_report` (which gathers the runs and writes the tables) because
which groups share a figure, and how each is coloured and textured, is a question of its own.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Mapping, Sequence

from ser.reporting.figures import BarSeries, layer_weights_figure, regime_bar_figure
from ser.reporting.sweep_summary import RunGroup, distinguishing_labels
from ser.reporting.tables import METRIC_NAMES, NOISY_MEAN

REGIME_NAMES = {"clean": "clean-trained", "augmented": "noise-augmented"}
# One colour per group of a regime and model, in family order.
OURS_COLOURS = {"clean": ["tab:blue", "tab:cyan", "tab:purple", "tab:gray"],
                "augmented": ["tab:orange", "tab:green", "tab:red", "tab:brown", "tab:olive"]}
# Textures of the models of one figure, in family order ("//" is kept for the paper's bars).
MODEL_HATCHES = ((None, "plain"), ("..", "dotted"), ("xx", "crossed"), ("--", "dashed"), ("oo", "circled"))
# Settings of the classifier rather than of the data it is trained and tested on: a baseline
# that differs from a network only in them (and in the regime) is drawn in the network's figure.
# The default of callers without a config; conf/evaluate.yaml's figure.model_keys is the same list.
MODEL_KEYS = ("model.*", "optim.*", "trainer.*", "features.*", "augment.*", "select.*", "callbacks.*", "calibration.*",
              "data.batch_size")


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def _key(group: RunGroup, patterns: Sequence[str]) -> tuple:
    return tuple(sorted((k, v) for k, v in group.settings.items() if not _matches(k, patterns)))


def regime_families(groups: Sequence[RunGroup], regime_keys: Sequence[str],
                    model_keys: Sequence[str] = ()) -> list[list[RunGroup]]:
    """Groups that differ only in ``regime_keys``, when they hold both regimes; a baseline's
    family (:attr:`RunGroup.is_baseline`) joins every such family of another model trained on the
    same data (differing from it only in ``model_keys`` too), so each figure of a network shows
    the baseline beside it. Without ``model_keys``, or without a matching network, a baseline's
    family stands alone."""
    families: dict[tuple, list[RunGroup]] = {}
    for g in groups:
        families.setdefault(_key(g, regime_keys), []).append(g)
    complete = [f for f in families.values() if {g.regime for g in f} >= {"clean", "augmented"}]
    hosts = [list(f) for f in complete if not all(_is_baseline(g) for g in f)]
    alone = []
    for family in (f for f in complete if all(_is_baseline(g) for g in f)):
        data = _key(family[0], [*regime_keys, *model_keys])
        names = {g.settings.get("model.name") for g in family}
        joined = [h for h in hosts if model_keys and _key(h[0], [*regime_keys, *model_keys]) == data
                  and names.isdisjoint(g.settings.get("model.name") for g in h)]
        for host in joined:
            host.extend(family)
        if not joined:
            alone.append(list(family))
    return hosts + alone


def _is_baseline(group: RunGroup) -> bool:
    return group.is_baseline


def _series(family: Sequence[RunGroup], test_sets: list[str], metric: str) -> list[BarSeries]:
    """One bar series per group: the colour says the regime (the n-th clean-trained group of a
    model takes the n-th clean colour), the texture says the model (plain for the first, dots,
    crosses ... for the next: a baseline beside a network), so both read at a glance."""
    used: dict[tuple[str, str], int] = {}
    models: list[str] = []
    series = []
    for g in family:
        stats = g.stats()
        model = str(g.runs[0].record.get("model", "?"))
        if model not in models:
            models.append(model)
        colours = OURS_COLOURS.get(g.regime, ["tab:gray"])
        colour = colours[used.get((model, g.regime), 0) % len(colours)]
        used[(model, g.regime)] = used.get((model, g.regime), 0) + 1
        nan = float("nan")
        series.append(BarSeries(
            label=f"{REGIME_NAMES.get(g.regime, g.regime).capitalize()} ({g.label}; "
                  f"{len(g.runs)} run{'s' if len(g.runs) > 1 else ''})",
            means=[100 * stats[t][metric]["mean"] if t in stats else nan for t in test_sets],
            stds=[100 * stats[t][metric]["std"] if t in stats else nan for t in test_sets],
            color=colour, hatch=MODEL_HATCHES[models.index(model) % len(MODEL_HATCHES)][0]))
    return series


def _paper_series(paper: Mapping, test_sets: list[str]) -> list[BarSeries]:
    out = []
    for regime in ("clean", "augmented"):
        numbers = paper.get(regime) or {}
        out.append(BarSeries(label=f"Paper, {REGIME_NAMES[regime]}",
                             means=[float(numbers.get(t, float("nan"))) for t in test_sets],
                             color=OURS_COLOURS[regime][0], reference=True))
    return out


def draw_regime_figures(groups: Sequence[RunGroup], out_dir: Path, metric: str,
                        regime_keys: Sequence[str], paper_figures: Mapping | None,
                        model_keys: Sequence[str] = MODEL_KEYS) -> list[dict]:
    """One PNG per family with both regimes; ``paper_figures`` None leaves the paper out."""
    families = regime_families(groups, regime_keys, model_keys)
    family_labels = distinguishing_labels([
        {k: v for k, v in f[0].settings.items() if not _matches(k, regime_keys)} for f in families])
    drawn = []
    for family, family_label in zip(families, family_labels):
        # clean-trained bars first, then augmented; within a regime the deep models, then baselines
        family = sorted(family, key=lambda g: (g.regime != "clean", _is_baseline(g), g.label))
        test_sets = family[0].test_sets + [t for g in family[1:] for t in g.test_sets
                                           if t not in family[0].test_sets]
        if any(NOISY_MEAN in g.stats() for g in family):  # the robustness summary, last
            test_sets.append(NOISY_MEAN)
        series = _series(family, test_sets, metric)
        paper = None
        if paper_figures and paper_figures.get("metric") == metric:
            paper = (paper_figures.get("datasets") or {}).get(family[0].dataset)
        if paper:
            series += _paper_series(paper, test_sets)
        suffix = "" if len(families) == 1 else "_" + re.sub(r"[^\w.=-]+", "_", family_label)
        path = out_dir / f"{metric}_by_regime{suffix}.png"
        folds = sorted({f for g in family for f in g.folds})
        models = list(dict.fromkeys(str(g.runs[0].record.get("model", "?")) for g in family))
        title = (f"{family[0].dataset}{f' ({family_label})' if family_label else ''}: "
                 f"{METRIC_NAMES.get(metric, metric)} per test set, clean-trained vs noise-augmented"
                 + (f"\nmodels: {' vs '.join(models)} "
                    f"({', '.join(name for _, name in MODEL_HATCHES[:len(models)])} bars)"
                    if len(models) > 1 else f"\nmodel: {models[0]}")
                 + f"\nmean ± std over folds {', '.join(map(str, folds))}"
                 + (f"; hatched: the paper's {paper.get('figure', 'figures')}" if paper else ""))
        regime_bar_figure(test_sets, series, title, f"{METRIC_NAMES.get(metric, metric)} (%)", path)
        drawn.append({"path": str(path), "dataset": family[0].dataset, "groups": [g.label for g in family],
                      "paper_reference": bool(paper)})
    # A summary folder written again (more runs, another grouping) keeps only this grouping's
    # figures: an older figure of another name would sit beside them and contradict them.
    written = {Path(d["path"]).name for d in drawn}
    for stale in out_dir.glob(f"{metric}_by_regime*.png"):
        if stale.name not in written:
            stale.unlink()
    return drawn


def draw_layer_weights(groups: Sequence[RunGroup], out_dir: Path) -> dict[str, dict]:
    """``layer_weights.png`` for the groups whose runs are speech encoders (``run.json``'s
    ``training.layer_weights``): mean ± std share per layer over each group's folds. Returns
    ``{label: {"mean": [...], "std": [...]}}``; no groups, no figure (and an old one removed)."""
    import numpy as np

    found: dict[str, dict] = {}
    for g in groups:
        shares = [r.record.get("training", {}).get("layer_weights") for r in g.runs]
        shares = [s for s in shares if s]
        if not shares or len({len(s) for s in shares}) != 1:
            continue
        values = np.asarray(shares, dtype=float)
        std = values.std(axis=0, ddof=1).tolist() if len(values) > 1 else [None] * values.shape[1]
        found[g.label] = {"mean": values.mean(axis=0).tolist(), "std": std, "n": len(values)}
    path = out_dir / "layer_weights.png"
    if not found:
        path.unlink(missing_ok=True)
        return found
    layer_weights_figure([(label, v["mean"], [np.nan if x is None else x for x in v["std"]])
                          for label, v in found.items()],
                         "Speech encoder layer weights (softmax), mean ± std over folds", path)
    return found
