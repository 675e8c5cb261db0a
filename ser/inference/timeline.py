"""Emotion over time of a recording: ``<name>.timeline.csv`` and ``<name>.timeline.png``.

A table of one mean probability per recording hides a conversation that turns angry halfway;
the timeline shows each class's probability every hop, the loudness beneath (quiet stretches
are where the model guesses), and the stretches where one emotion clearly leads.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.audio.io import describe_source, load_audio
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import (DEFAULT_HOP_S, predict_windows, rms_db, sliding_windows,
                                   smooth_probabilities)

CLEAR_THRESHOLD = 0.5  # a stretch is marked when its leading class averages at least this


def timeline(predictor, audio: np.ndarray, window_s: float | None = None,
             hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None) -> dict:
    """Probabilities of every window of a (T,) waveform at the predictor's rate.

    Returns ``time_s`` (n,) window centres in s, ``probs`` (n, C) after smoothing, ``labels``,
    ``level_time_s``/``level_db`` (RMS dBFS per hop), ``note`` and the settings used. With a
    ``gate`` (:class:`~ser.inference.speech_gate.SpeechGate`), ``speech`` (n,) is each window's
    share of speech and windows below ``gate.min_speech`` are labelled ``no speech``.
    """
    rate = int(predictor.sample_rate)
    window_s = float(window_s or predictor.block_seconds)
    windows = sliding_windows(audio, rate, window_s, hop_s)
    probs = smooth_probabilities(predict_windows(predictor, windows), smooth)
    classes = list(predictor.classes)
    labels = [classes[i] for i in probs.argmax(axis=1)]
    speech = None
    if gate is not None:
        starts = np.round(windows.starts_s * rate).astype(np.int64)
        speech = gate.fractions(np.asarray(audio, np.float32).reshape(-1), starts,
                                windows.frames.shape[1])
        labels = [label if ok else NO_SPEECH for label, ok in zip(labels, gate.speaks(speech))]
    level_t, level = rms_db(audio, rate, hop_s)
    return {"classes": classes, "time_s": windows.centres_s, "starts_s": windows.starts_s,
            "probs": probs, "labels": labels, "speech": speech,
            "min_speech": None if gate is None else gate.min_speech,
            "level_time_s": level_t, "level_db": level, "duration_s": audio.shape[0] / rate,
            "window_s": window_s, "hop_s": hop_s, "smooth": int(smooth or 0), "note": windows.note}


def speaking(result: dict) -> np.ndarray:
    """(n,) bool: the windows of a :func:`timeline` given an emotion (all without a gate)."""
    return np.array([label != NO_SPEECH for label in result["labels"]], bool)


def _runs(keys: np.ndarray, starts_s: np.ndarray, window_s: float, hop_s: float):
    """(start s, end s, key, window indices) of each run of equal ``keys``: a run of windows
    i..j spans the hops those windows' centres cover, so neighbouring runs meet without
    overlapping; the first and last runs reach the first window's start and the last one's end."""
    centre = starts_s + window_s / 2
    for run in np.split(np.arange(len(keys)), np.flatnonzero(np.diff(keys)) + 1):
        lo = starts_s[0] if run[0] == 0 else centre[run[0]] - hop_s / 2
        hi = starts_s[-1] + window_s if run[-1] == len(keys) - 1 else centre[run[-1]] + hop_s / 2
        yield float(lo), float(hi), int(keys[run[0]]), run


def clear_stretches(probs: np.ndarray, starts_s: np.ndarray, window_s: float, hop_s: float,
                    threshold: float = CLEAR_THRESHOLD, speaks: np.ndarray | None = None
                    ) -> list[tuple[float, float, int, float]]:
    """Contiguous runs of one leading class whose mean probability is >= ``threshold``, among
    the windows that ``speaks`` (all if None; see :func:`_runs` for the spans).

    Returns ``(start s, end s, class index, mean probability)``.
    """
    if len(probs) == 0:
        return []
    top = probs.argmax(axis=1)
    if speaks is not None:
        top = np.where(speaks, top, -1)
    out = []
    for lo, hi, c, run in _runs(top, starts_s, window_s, hop_s):
        mean = float(probs[run, c].mean()) if c >= 0 else 0.0
        if c >= 0 and mean >= threshold:
            out.append((lo, hi, c, mean))
    return out


def no_speech_stretches(speaks: np.ndarray, starts_s: np.ndarray, window_s: float,
                        hop_s: float) -> list[tuple[float, float]]:
    """(start s, end s) of each run of windows without enough speech."""
    if len(speaks) == 0:
        return []
    return [(lo, hi) for lo, hi, key, _ in _runs(np.asarray(speaks, np.int64), starts_s, window_s, hop_s)
            if key == 0]


def write_timeline_csv(path: Path, result: dict) -> Path:
    """Columns ``time_s``, one probability per class (0-1), ``label`` (the leading class, or
    ``no speech``) and, with a speech gate, ``speech`` (the window's share of speech, 0-1)."""
    speech = result.get("speech")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time_s", *result["classes"], "label", *(["speech"] if speech is not None else [])])
        for i, (t, p, label) in enumerate(zip(result["time_s"], result["probs"], result["labels"])):
            writer.writerow([f"{t:.3f}", *(f"{v:.5f}" for v in p), label,
                             *([f"{speech[i]:.3f}"] if speech is not None else [])])
    return path


def timeline_figure(path: Path, result: dict, title: str) -> Path:
    """Three panels sharing time: clear stretches, stacked probabilities, RMS level (dBFS)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, probs, starts = result["classes"], result["probs"], result["starts_s"]
    colours = plt.get_cmap("tab10")(np.arange(len(classes)) % 10)
    # extend to the first window's start and the last one's end so a single window still draws
    x = np.concatenate([[starts[0]], result["time_s"], [starts[-1] + result["window_s"]]])
    y = np.vstack([probs[:1], probs, probs[-1:]])
    end = max(float(x[-1]), result["duration_s"])
    fig, (strip, ax, lev) = plt.subplots(3, 1, figsize=(11, 5.5), sharex=True,
                                         gridspec_kw={"height_ratios": [0.45, 3, 1.2]})
    speaks = speaking(result)
    stretches = clear_stretches(probs, starts, result["window_s"], result["hop_s"], speaks=speaks)
    for lo, hi in no_speech_stretches(speaks, starts, result["window_s"], result["hop_s"]):
        strip.axvspan(lo, hi, color="0.8", lw=0)
        ax.axvspan(lo, hi, color="white", alpha=0.6, lw=0, zorder=3)
        if hi - lo >= 0.04 * end:
            strip.text((lo + hi) / 2, 0.5, NO_SPEECH, ha="center", va="center", fontsize=8, color="0.3")
    if not stretches and speaks.any():
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
    strip.set_title(f"{title}: {result['window_s']:g}-s windows every {result['hop_s']:g} s{smooth}"
                    + (f" ({result['note']})" if result["note"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """File stems, with the parent folder added where two recordings share a stem."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def write_timelines(predictor, paths: Sequence[Path], out_dir: Path, window_s: float | None = None,
                    hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None) -> list[dict]:
    """A CSV and a PNG per readable recording in ``out_dir``; files that fail to decode are
    skipped here (``predict_audio`` already reports them). Prints once if any was resampled."""
    from ser.errors import SerError

    out_dir.mkdir(parents=True, exist_ok=True)
    rate = int(predictor.sample_rate)
    written, resampled = [], []
    for path, name in zip(paths, _unique_names(paths)):
        try:
            audio = load_audio(path, rate)
        except SerError:
            continue
        source = describe_source(path)
        if source.split(" ", 1)[0].isdigit() and int(source.split(" ", 1)[0]) != rate:
            resampled.append(f"{path.name} ({source.split(',')[0]})")
        result = timeline(predictor, audio, window_s, hop_s, smooth, gate)
        csv_path = write_timeline_csv(out_dir / f"{name}.timeline.csv", result)
        png_path = timeline_figure(out_dir / f"{name}.timeline.png", result, path.name)
        written.append({"path": str(path), "csv": str(csv_path), "png": str(png_path),
                        "windows": len(result["time_s"]), "note": result["note"]})
    if resampled:
        print(f"Resampled {len(resampled)} recording(s) to the model's {rate} Hz: "
              + ", ".join(resampled[:5]) + (" ..." if len(resampled) > 5 else ""), flush=True)
    return written


def timeline_summary(result: dict, digits: int = 4) -> dict:
    """A :func:`timeline` as plain JSON: lists instead of arrays, probabilities per class, and
    the clear stretches, so a client (``ser.predict output=json``, the server, the page) can draw
    it without the CSV or PNG. With a speech gate: ``speech`` (share per window),
    ``min_speech`` and ``no_speech`` (the stretches labelled ``no speech``)."""
    probs, classes = np.asarray(result["probs"]), result["classes"]
    r = lambda values: [round(float(v), digits) for v in values]  # noqa: E731
    speaks = speaking(result)
    stretches = clear_stretches(probs, result["starts_s"], result["window_s"], result["hop_s"],
                                speaks=speaks)
    gated = {} if result.get("speech") is None else {
        "speech": r(result["speech"]), "min_speech": result["min_speech"],
        "no_speech": [{"start_s": round(lo, 3), "end_s": round(hi, 3)} for lo, hi in
                      no_speech_stretches(speaks, result["starts_s"], result["window_s"], result["hop_s"])]}
    return {**gated, "window_s": result["window_s"], "hop_s": result["hop_s"], "smooth": result["smooth"],
            "note": result["note"], "time_s": r(result["time_s"]), "labels": list(result["labels"]),
            "probabilities": {c: r(probs[:, i]) for i, c in enumerate(classes)},
            "level_time_s": r(result["level_time_s"]), "level_db": r(result["level_db"]),
            "stretches": [{"start_s": round(lo, 3), "end_s": round(hi, 3), "emotion": classes[c],
                           "mean": round(mean, digits)} for lo, hi, c, mean in stretches]}


def stretches_line(summary: dict) -> str:
    """The clear stretches (and those without speech) of a :func:`timeline_summary` in one
    line, for terminals."""
    found = [(s["start_s"], f"{s['start_s']:.2f}–{s['end_s']:.2f} s {s['emotion']} {100 * s['mean']:.0f}%")
             for s in summary["stretches"]]
    found += [(s["start_s"], f"{s['start_s']:.2f}–{s['end_s']:.2f} s {NO_SPEECH}")
              for s in summary.get("no_speech", [])]
    parts = [text for _, text in sorted(found)]
    return ("clear stretches: " + ", ".join(parts)) if parts else (
        f"no stretch where one emotion averages {100 * CLEAR_THRESHOLD:.0f}%")
