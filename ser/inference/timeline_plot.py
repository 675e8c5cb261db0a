"""The ``<name>.timeline.png`` of a :func:`~ser.inference.timeline.timeline`: clear stretches,
stacked probabilities and the loudness beneath, sharing time. Apart from the timeline itself
because only this needs matplotlib (imported when a figure is drawn, so predicting without
one never loads it) and because how it looks changes for other reasons than what it shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.inference.speech_gate import NO_SPEECH
from ser.inference.stretches import (CLEAR_THRESHOLD, clear_stretches, named, no_speech_stretches,
                                     speaking, unsure_stretches)
from ser.inference.windows import UNSURE

UNSURE_COLOUR = "#b9ab97"  # a warm grey: unsure stretches in the PNG (no speech: a cool light grey)


def timeline_figure(path: Path, result: dict, title: str) -> Path:
    """Three panels sharing time: clear stretches, stacked probabilities, RMS level (dBFS)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, starts = result["classes"], result["starts_s"]
    probs = np.nan_to_num(np.asarray(result["probs"], np.float64))  # no speech: no band
    colours = plt.get_cmap("tab10")(np.arange(len(classes)) % 10)
    # extend to the first window's start and the last one's end so a single window still draws
    x = np.concatenate([[starts[0]], result["time_s"], [starts[-1] + result["window_s"]]])
    y = np.vstack([probs[:1], probs, probs[-1:]])
    end = max(float(x[-1]), result["duration_s"])
    fig, (strip, ax, lev) = plt.subplots(3, 1, figsize=(11, 5.5), sharex=True,
                                         gridspec_kw={"height_ratios": [0.45, 3, 1.2]})
    speaks = speaking(result)
    stretches = clear_stretches(probs, starts, result["window_s"], result["hop_s"], speaks=named(result))
    for lo, hi in no_speech_stretches(speaks, starts, result["window_s"], result["hop_s"]):
        strip.axvspan(lo, hi, color="0.8", lw=0)
        ax.axvspan(lo, hi, color="white", alpha=0.6, lw=0, zorder=3)
        if hi - lo >= 0.04 * end:
            strip.text((lo + hi) / 2, 0.5, NO_SPEECH, ha="center", va="center", fontsize=8, color="0.3")
    for lo, hi in unsure_stretches(result):  # probabilities stay visible beneath a light veil
        strip.axvspan(lo, hi, color=UNSURE_COLOUR, lw=0)
        ax.axvspan(lo, hi, color=UNSURE_COLOUR, alpha=0.45, lw=0, zorder=3)
        if hi - lo >= 0.04 * end:
            strip.text((lo + hi) / 2, 0.5, UNSURE, ha="center", va="center", fontsize=8, color="0.2")
    if not stretches and named(result).any():
        strip.text(end / 2, 0.5, f"no stretch where one emotion averages {100 * CLEAR_THRESHOLD:.0f}%",
                   ha="center", va="center", fontsize=8, color="0.4")
    for lo, hi, c, mean in stretches:
        strip.axvspan(lo, hi, color=colours[c], alpha=0.85, lw=0)
        if hi - lo >= 0.04 * end:
            strip.text((lo + hi) / 2, 0.5, f"{classes[c]} {100 * mean:.0f}%", ha="center",
                       va="center", fontsize=8, color="white", fontweight="bold")
    strip.set_yticks([])
    strip.set_ylim(0, 1)
    strip.set_ylabel("clear", rotation=0, ha="right", va="center", fontsize=8)
    ax.stackplot(x, y.T, labels=classes, colors=colours, alpha=0.9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    hop = result["hop_s"]  # one bar per hop, from its start to its end
    lev.fill_between(np.append(result["level_time_s"] - hop / 2, result["level_time_s"][-1] + hop / 2),
                     -100, np.append(result["level_db"], result["level_db"][-1]), step="post", color="0.45")
    lev.set_ylim(max(-100.0, float(np.min(result["level_db"])) - 5), 3)
    lev.set_ylabel("RMS dBFS")
    lev.set_xlabel("time (s)")
    lev.set_xlim(0, end)
    smooth = f", smoothed over {result['smooth']} windows" if result["smooth"] > 1 else ""
    if result.get("min_confidence") is not None:
        smooth += f", {UNSURE} below {100 * result['min_confidence']:g}%"
    strip.set_title(f"{title}: {result['window_s']:g}-s windows every {result['hop_s']:g} s{smooth}"
                    + (f" ({result['note']})" if result["note"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
