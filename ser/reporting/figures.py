"""PNG pictures of results, readable without any tracker: confusion matrices and the paper's
Figures 4/5 (weighted F1 per test set, clean-trained vs noise-augmented, as grouped bars).

The clean vs noisy spectrogram pictures (the paper's Figure 2) come from :mod:`ser.figure2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.reporting.tables import test_set_label


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, imported when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, safe on servers and in workers
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str,
                            path: str | Path, dpi: int = 150) -> Path:
    """Rows = true class, columns = predicted; cells coloured by % of the true class, with counts."""
    plt = pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = 1.6 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), constrained_layout=True)
    shown = ax.imshow(percent, cmap="Blues", vmin=0.0, vmax=100.0)
    for (i, j), value in np.ndenumerate(percent):
        text = f"{value:.0f}%\n({counts[i, j]})" if totals[i, 0] else "–"  # no block of that class
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if value > 55 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("Predicted emotion")
    ax.set_ylabel("True emotion")
    ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=ax, label="% of the true class's blocks", shrink=0.85)
    return save_figure(fig, path, dpi)


@dataclass
class BarSeries:
    """One bar per test set: ``means``/``stds`` in percent (``stds`` None: no error bar)."""

    label: str
    means: list[float]
    stds: list[float] | None = None
    color: str | None = None
    reference: bool = False  # published numbers: hatched and lighter, so they read as "not ours"
    hatch: str | None = None  # a texture of our own bars (tells models apart; "//" is the paper's)


def regime_bar_figure(test_sets: Sequence[str], series: Sequence[BarSeries], title: str,
                      ylabel: str, path: str | Path, dpi: int = 150) -> Path:
    """Grouped bars: test sets along x, one bar per series side by side, error bars = std."""
    plt = pyplot()
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(test_sets))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 + len(test_sets) * (0.45 + 0.32 * n)), 5.0),
                           constrained_layout=True)
    top = 0.0
    for k, s in enumerate(series):
        offsets = x + (k - (n - 1) / 2) * width
        means = np.asarray(s.means, dtype=float)
        errors = None if s.stds is None else np.nan_to_num(np.asarray(s.stds, dtype=float))
        bars = ax.bar(offsets, means, width * 0.92, yerr=errors, capsize=3, label=s.label,
                      color=s.color, alpha=0.45 if s.reference else 0.95,
                      hatch="//" if s.reference else s.hatch, edgecolor="black", linewidth=0.6,
                      error_kw={"elinewidth": 1.0, "ecolor": "black"})
        heights = means + (0 if errors is None else errors)
        for bar, mean, height in zip(bars, means, heights):  # value above the error bar
            if np.isfinite(mean):
                ax.text(bar.get_x() + bar.get_width() / 2, height, f"{mean:.1f}", ha="center",
                        va="bottom", fontsize=7)
        top = max(top, float(np.nanmax(heights)))
    ax.set_xticks(x, [test_set_label(t) for t in test_sets])
    ax.set_xlabel("Test set")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, min(100.0, top * 1.18 + 2) if top > 0 else 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (folders made) and close it; returns the path."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def layer_weights_figure(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str,
                         path: str | Path, dpi: int = 150) -> Path:
    """A speech encoder head's layer shares: layer index along x (0: the convolutional encoder's
    output), share of the weighted sum along y, one line per (label, means, stds) with a band of
    ± std over folds. Which layers carry emotion, and whether folds agree on it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), constrained_layout=True)
    for label, means, stds in series:
        x = np.arange(len(means))
        m, s = np.asarray(means, dtype=float), np.nan_to_num(np.asarray(stds, dtype=float))
        ax.plot(x, m, marker="o", markersize=3.5, label=label)
        ax.fill_between(x, m - s, m + s, alpha=0.2)
    longest = max((len(m) for _, m, _ in series), default=1)
    ax.axhline(1.0 / longest, color="gray", linestyle=":", linewidth=1, label="uniform (1 / layers)")
    ax.set_xticks(np.arange(longest))
    ax.set_xlabel("Encoder layer (0: convolutional encoder output)")
    ax.set_ylabel("Share of the weighted sum")
    top = max((float(np.nanmax(np.asarray(m, dtype=float) + np.nan_to_num(np.asarray(s, dtype=float))))
               for _, m, s in series), default=1.0)
    ax.set_ylim(0, max(top, 1.0 / longest) * 1.15)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi)
