"""The figure of paired differences: how much better one group is than another, per test set.

One panel per comparison (first group minus second, the same test items for both): the
difference of a metric in percentage points per test set, with its 95 % speaker-bootstrap
interval as an error bar, and a line at 0. An interval clear of the line is a difference the
speakers support; filled markers mark those, open markers the ones whose interval holds 0.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.reporting.figures import pyplot, save_figure

Row = tuple[str, Sequence[str], Sequence[float], Sequence[float], Sequence[float]]


def paired_difference_figure(rows: Sequence[Row], path: str | Path, title: str,
                             metric_label: str = "UA", dpi: int = 150) -> Path:
    """Write a PNG of ``rows``: (comparison label, test set labels, differences, lows, highs),
    differences and interval ends in percentage points, test sets in the given order along x."""
    plt = pyplot()
    rows = list(rows)
    if not rows:
        raise ValueError("no comparisons to draw")
    widest = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(6.5, 1.6 + 0.85 * widest), 0.9 + 2.7 * len(rows)),
                             layout="constrained", squeeze=False)
    for ax, (label, test_sets, diffs, lows, highs) in zip(axes[:, 0], rows):
        _panel(ax, label, list(test_sets), np.asarray(diffs, dtype=float),
               np.asarray(lows, dtype=float), np.asarray(highs, dtype=float), metric_label)
    handles = [plt.Line2D([], [], marker="o", linestyle="none", markersize=6, color="tab:blue",
                          markerfacecolor=face, label=text)
               for face, text in (("tab:blue", "95 % interval excludes 0"),
                                  ("white", "95 % interval includes 0"))]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, dpi)


def _panel(ax, label: str, test_sets: list[str], diffs: np.ndarray, lows: np.ndarray,
           highs: np.ndarray, metric_label: str) -> None:
    x = np.arange(len(test_sets))
    below = np.nan_to_num(diffs - lows, nan=0.0).clip(min=0)
    above = np.nan_to_num(highs - diffs, nan=0.0).clip(min=0)
    clear = (lows > 0) | (highs < 0)  # the interval excludes 0 (False where it is NaN)
    ax.axhline(0.0, color="gray", linewidth=1.0, linestyle="--", zorder=1)
    ax.errorbar(x, diffs, yerr=[below, above], fmt="none", ecolor="tab:blue", elinewidth=1.4,
                capsize=4, zorder=2)
    ax.scatter(x[clear], diffs[clear], s=36, color="tab:blue", edgecolors="tab:blue", zorder=3)
    ax.scatter(x[~clear], diffs[~clear], s=36, facecolors="white", edgecolors="tab:blue",
               linewidths=1.4, zorder=3)
    for xi, d, top in zip(x, diffs, diffs + above):
        if np.isfinite(d):
            ax.annotate(f"{d:+.1f}", (xi, top), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
    ends = np.concatenate([diffs - below, diffs + above, [0.0]])
    ends = ends[np.isfinite(ends)]
    span = max(float(ends.max() - ends.min()), 1.0)
    ax.set_ylim(float(ends.min()) - 0.08 * span, float(ends.max()) + 0.18 * span)  # room for values
    ax.set_xlim(-0.6, len(test_sets) - 0.4)
    ax.set_xticks(x, test_sets)
    ax.set_ylabel(f"Δ {metric_label} (pp)")
    ax.set_title("\n".join(textwrap.wrap(label, 90)), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if len(test_sets) > 8 or max((len(t) for t in test_sets), default=0) > 9:
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_ha("right")
