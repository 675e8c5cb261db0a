"""The paper's Table 5/6 layout from one run's metrics, as text, Markdown and CSV."""

from __future__ import annotations

import csv
import io

COLUMNS = [("accuracy", "Acc (UAcc)"), ("weighted_precision", "WavgPr"), ("weighted_recall", "WavgR"),
           ("weighted_f1", "Wavgf1"), ("ua", "UA"), ("macro_f1", "MacroF1"),
           ("utterance_accuracy", "UttAcc")]


def _rows(metrics: dict) -> list[list[str]]:
    rows = []
    for name, m in metrics.items():
        label = "Clean" if name == "clean" else name.replace("dB", " dB")
        rows.append([label, *(f"{100 * m[key]:.2f}" for key, _ in COLUMNS)])
    return rows


def markdown_table(metrics: dict, title: str | None = None) -> str:
    """Rows per test set, columns per metric, in percent (the paper's Tables 5 and 6)."""
    header = ["Test set", *(h for _, h in COLUMNS)]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(COLUMNS)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in _rows(metrics)]
    return "\n".join(lines)


def csv_table(metrics: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["test_set", *(key for key, _ in COLUMNS)])
    for name, m in metrics.items():
        writer.writerow([name, *(f"{m[key]:.6f}" for key, _ in COLUMNS)])
    return out.getvalue()
