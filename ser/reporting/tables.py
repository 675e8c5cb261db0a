"""The paper's Table 5/6 layout, as Markdown and CSV: one run, or a sweep's mean ± std over folds."""

from __future__ import annotations

import csv
import io
import math

from ser.set_names import other_corpus

# The one list of a test set's summary metrics, in table order: (key in metrics.json, the paper's
# column header, the name in titles and figure axes).
METRIC_TABLE = [("accuracy", "Acc (UAcc)", "Accuracy"), ("weighted_precision", "WavgPr", "Weighted precision"),
                ("weighted_recall", "WavgR", "Weighted recall"), ("weighted_f1", "Wavgf1", "Weighted F1"),
                ("ua", "UA", "UA"), ("macro_f1", "MacroF1", "Macro F1"),
                ("utterance_accuracy", "UttAcc", "Utterance accuracy")]
COLUMNS = [(key, header) for key, header, _ in METRIC_TABLE]
METRICS = [key for key, _, _ in METRIC_TABLE]
METRIC_NAMES = {key: name for key, _, name in METRIC_TABLE}


# The robustness row of a sweep's tables: the mean over the noisy test sets of the run's corpus
# (ROBUSER's summary; its loss from clean is in the pooled table).
NOISY_MEAN = "noisy_mean"


def test_set_label(name: str) -> str:
    """``clean`` -> ``Clean``, ``15dB`` -> ``15 dB``, ``urdu/0dB`` -> ``urdu/0 dB``,
    ``noisy_mean`` -> ``Noisy mean``."""
    if name == NOISY_MEAN:
        return "Noisy mean"
    corpus = other_corpus(name)
    own = name[len(corpus) + 1:] if corpus else name
    label = "Clean" if own == "clean" else own.replace("dB", " dB", 1)
    return f"{corpus}/{label}" if corpus else label


def _markdown(header: list[str], rows: list[list[str]], title: str | None) -> str:
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_table(metrics: dict, title: str | None = None) -> str:
    """Rows per test set, columns per metric, in percent (the paper's Tables 5 and 6)."""
    rows = [[test_set_label(name), *(f"{100 * m[key]:.2f}" for key in METRICS)]
            for name, m in metrics.items()]
    return _markdown(["Test set", *(h for _, h in COLUMNS)], rows, title)


def csv_table(metrics: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["test_set", *METRICS])
    for name, m in metrics.items():
        writer.writerow([name, *(f"{m[key]:.6f}" for key in METRICS)])
    return out.getvalue()


def mean_std_cell(mean: float, std: float | None) -> str:
    """``61.57 ± 1.20`` in percent; the mean alone when there is no spread to show (one fold)."""
    if std is None or math.isnan(std):
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def markdown_mean_std_table(stats: dict, title: str | None = None) -> str:
    """Table 5/6 layout of ``stats[test_set][metric] = {"mean", "std", "n"}`` (fractions)."""
    rows = [[test_set_label(name), *(mean_std_cell(s[key]["mean"], s[key]["std"]) for key in METRICS)]
            for name, s in stats.items()]
    return _markdown(["Test set", *(h for _, h in COLUMNS)], rows, title)


def markdown_overview(rows: list[tuple[str, str, dict]], test_sets: list[str], metric: str,
                      title: str | None = None) -> str:
    """One row per group (label, folds, ``stats``), one column per test set, cells ``metric``."""
    body = [[label, folds, *(mean_std_cell(s[t][metric]["mean"], s[t][metric]["std"]) if t in s else "–"
                             for t in test_sets)] for label, folds, s in rows]
    return _markdown(["Runs", "Folds", *map(test_set_label, test_sets)], body, title)


def csv_mean_std_table(rows: list[tuple[dict, dict]]) -> str:
    """Long CSV: one line per (group, test set); ``rows`` pairs a group's columns with its stats."""
    group_columns: list[str] = []
    for columns, _ in rows:
        group_columns += [c for c in columns if c not in group_columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*group_columns, "test_set", "n_runs",
                     *(f"{key}_{part}" for key in METRICS for part in ("mean", "std"))])
    for columns, stats in rows:
        for name, s in stats.items():
            values = []
            for key in METRICS:
                std = s[key]["std"]
                values += [f"{s[key]['mean']:.6f}", "" if std is None or math.isnan(std) else f"{std:.6f}"]
            writer.writerow([*(columns.get(c, "") for c in group_columns), name,
                             max(s[key]["n"] for key in METRICS), *values])
    return out.getvalue()
