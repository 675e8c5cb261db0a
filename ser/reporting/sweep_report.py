"""``evaluate.py sweep=DIR``: the sweep's tables (mean ± std over folds) and the paper's Figures 4/5.

The runs are found, grouped and aggregated here, and the tables written (summary.md/.csv/.json);
the figures, and which groups share one, are drawn by :mod:`ser.reporting.regime_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ser.atomic import write_json_atomic, write_text_atomic
from ser.errors import SerError
from ser.reporting.calibration_report import calibration_markdown, group_calibration
from ser.reporting.pooled import (LEVELS, comparisons_markdown, draw_differences, group_predictions,
                                  pooled_markdown, pooled_summary)
from ser.reporting.regime_figures import MODEL_KEYS, REGIME_NAMES, draw_layer_weights, draw_regime_figures
from ser.reporting.split_plans import check_split_plans
from ser.reporting.sweep_summary import find_runs, group_runs, summary_rows
from ser.reporting.tables import METRIC_NAMES, csv_mean_std_table, markdown_mean_std_table, markdown_overview


def summarise_sweep(sweep_dir: str | Path, ignore: Sequence[str], out_dir: str | Path | None = None,
                    metric: str = "weighted_f1", regime_keys: Sequence[str] = ("snr", "data.snr"),
                    paper_figures: Mapping | None = None,
                    model_keys: Sequence[str] = MODEL_KEYS,
                    statistics: Mapping | None = None, retests: bool = False) -> dict:
    """Gather, group and aggregate a sweep; write summary.md/.csv/.json, the regime figures and
    the pooled statistics with their figure of paired differences.

    ``model_keys``: settings of the classifier; a baseline's groups that differ from a
    network's only in them and in the regime are drawn in the network's figure.
    ``statistics``: ``n_boot``, ``n_perm`` and ``seed`` of the speaker resampling.
    ``retests``: each run's ``evaluate.py ckpt=RUN ...`` re-tests join as groups of their own."""
    if metric not in METRIC_NAMES:
        raise SerError(f"figure.metric={metric!r} is not a reported metric; use one of "
                       f"{', '.join(METRIC_NAMES)}.")
    runs, skipped = find_runs(sweep_dir, retests=retests)
    if not runs:
        left = "; ".join(f"{p} ({why})" for p, why in skipped[:3]) or "no run folders at all"
        raise SerError(f"No finished run in {sweep_dir}: a finished run folder holds metrics.json "
                       f"and run.json, which train.py writes after testing (found: {left}). Point "
                       "sweep= at a hydra.sweep.dir, or finish the sweep with the same "
                       "`train.py -m ...` command plus resume=true.")
    groups = group_runs(runs, ignore)
    check_split_plans(groups)
    out = Path(out_dir) if out_dir else Path(sweep_dir) / "summary"
    out.mkdir(parents=True, exist_ok=True)
    figures = draw_regime_figures(groups, out, metric, regime_keys, paper_figures, model_keys)
    layers = draw_layer_weights(groups, out)
    found = {g.label: group_predictions(g) for g in groups}   # each group's predictions.csv read once
    pooled = pooled_summary(groups, **dict(statistics or {}), found=found)
    differences = draw_differences(pooled, out)
    calibration, calibration_figures = group_calibration(
        groups, {label: pred for label, (pred, _) in found.items()}, out,
        **{k: v for k, v in dict(statistics or {}).items() if k in ("n_boot", "seed")})
    summary = {"sweep": str(sweep_dir), "n_runs": len(runs), "metric": metric,
               "pooled": pooled, "differences_figure": str(differences) if differences else None,
               "groups": summary_rows(groups), "figures": figures, "layer_weights": layers,
               "calibration": calibration, "calibration_figures": calibration_figures,
               "skipped": [{"path": str(p), "why": why} for p, why in skipped], "out_dir": str(out)}
    write_text_atomic(out / "summary.md", summary_markdown(summary) + "\n")
    write_text_atomic(out / "summary.csv", csv_mean_std_table(
        [({"group": g["label"], "dataset": g["dataset"], "regime": g["regime"],
           "folds": " ".join(map(str, g["folds"]))}, g["metrics"]) for g in summary["groups"]]))
    write_json_atomic(out / "summary.json", summary)
    return summary


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The overview (one metric, groups × test sets), then each group's Table 5/6 layout."""
    groups = summary["groups"]
    test_sets: list[str] = []
    for g in groups:
        test_sets += [t for t in g["metrics"] if t not in test_sets]
    metric = summary["metric"]
    pooled = summary.get("pooled") or {"groups": {}}
    parts = [f"Sweep {summary['sweep']}: {summary['n_runs']} finished run(s) in {len(groups)} "
             "group(s)."]
    validation = validation_markdown(groups)
    if validation:
        parts.append(validation)
    for level in LEVELS:
        parts += [t for t in (pooled_markdown(pooled, level), comparisons_markdown(pooled, level)) if t]
    for label, why in (pooled.get("not_pooled") or {}).items():
        parts.append(f"No pooled figures for {label}: {why}.")
    if summary.get("calibration"):
        parts.append(calibration_markdown(summary["calibration"]))
    parts += ["Mean ± std over the runs (folds) of each group, in %:",
             markdown_overview([(f"{g['label']} ({REGIME_NAMES.get(g['regime'], g['regime'])})",
                                 ", ".join(map(str, g["folds"])), g["metrics"]) for g in groups],
                               test_sets, metric, title=f"{METRIC_NAMES[metric]} per test set")]
    for g in groups:
        regime = REGIME_NAMES.get(g["regime"], g["regime"])
        parts.append(markdown_mean_std_table(
            g["metrics"], title=f"{g['label']}: {g['dataset']}, {regime}, "
                                f"folds {', '.join(map(str, g['folds']))}"))
    if summary["skipped"]:
        parts.append("Left out: " + "; ".join(f"{s['path']} ({s['why']})" for s in summary["skipped"]))
    return "\n\n".join(parts)


def validation_markdown(groups: Sequence[Mapping[str, Any]]) -> str:
    """Each group's validation UA per fold and its mean: the figure to choose settings by (the
    test sets are for reporting the chosen ones), beside the same runs' test UA in the validation
    part's conditions and the gap between the two (a validation part that predicts the test has a gap near 0).
    Empty when no group recorded one."""
    rows = [(g["label"], g.get("validation_ua")) for g in groups]
    rows = [(label, v) for label, v in rows if v]
    if not rows:
        return ""
    folds = sorted({int(f) for _, v in rows for f in v["per_fold"]})
    shared = any(v.get("shared_text") for _, v in rows)   # a corpus naming texts several classes speak
    head = ["Group", "Validates on", "Mean ± std", *[f"Fold {f}" for f in folds], "Test, same conditions",
            "Validation − test", *(["Validation, shared texts only"] if shared else [])]
    lines = ["**Validation UA (%, each fold's validation part: the score to choose settings by; "
             "mean ± std over folds), beside the same runs' test UA in the validation part's "
             "conditions (clean and the training SNRs, mean over folds) and the gap (points; "
             "validation on held-out speakers should predict the test)**", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for label, v in rows:
        per_fold = {int(f): u for f, u in v["per_fold"].items()}
        spread = f" ± {100 * v['std']:.1f}" if v.get("std") is not None else ""
        test, gap = v.get("test_ua"), v.get("gap")
        cells = [v.get("validation") or "–", f"{100 * v['mean']:.1f}{spread}",
                 *[f"{100 * per_fold[f]:.1f}" if f in per_fold else "–" for f in folds],
                 "–" if test is None else f"{100 * test:.1f}",
                 "–" if gap is None else f"{100 * gap:+.1f}"]
        if shared:
            st = v.get("shared_text")
            cells.append("–" if not st else f"{100 * st['mean']:.1f} (" + " / ".join(
                f"{100 * u:.1f}" for u in st["per_fold"].values()) + ")")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_summary(summary: Mapping[str, Any]) -> str:
    """What evaluate.py prints for a sweep: the tables, the figures, where the files went."""
    lines = [summary_markdown(summary), ""]
    for f in summary["figures"]:
        lines.append(f"Figure: {f['path']}" + (" (with the paper's numbers)" if f["paper_reference"] else ""))
    if summary.get("layer_weights"):
        lines.append(f"Figure: {Path(summary['out_dir']) / 'layer_weights.png'} (speech encoder layer weights)")
    if summary.get("differences_figure"):
        lines.append(f"Figure: {summary['differences_figure']} (paired differences of pooled UA)")
    if not summary["figures"]:
        lines.append("No regime figure: the sweep lacks clean-trained and noise-augmented runs "
                     "that differ only in snr (e.g. `train.py -m snr=clean,all ...`).")
    lines.append(f"Wrote summary.md, summary.csv and summary.json to {summary['out_dir']}")
    return "\n".join(lines)
