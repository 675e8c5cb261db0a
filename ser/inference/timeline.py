"""Emotion over time of a recording: ``<name>.timeline.csv`` and ``<name>.timeline.png``.

A table of one mean probability per recording hides a conversation that turns angry halfway;
the timeline shows each class's probability every hop, the loudness beneath (quiet stretches
are where the model guesses), and the stretches where one emotion clearly leads. Windows the
speech gate finds no speech in are ``no speech``; with ``min_confidence``, windows whose top
probability is below it are ``unsure`` (their probabilities kept).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.audio.io import decode_audio
from ser.audio.speech_activity import window_fractions
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.stretches import (CLEAR_THRESHOLD, clear_stretches, named, no_speech_stretches,
                                     speaking, unsure_stretches)
from ser.inference.timeline_plot import timeline_figure
from ser.inference.windows import (DEFAULT_HOP_S, UNSURE, rms_db, sliding_windows,
                                   smooth_probabilities, unsure_rows)


def timeline(predictor, audio: np.ndarray, window_s: float | None = None,
             hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None,
             speech_mask: np.ndarray | None = None, batch_size: int = 32,
             min_confidence: float | None = None) -> dict:
    """Probabilities of every window of a (T,) waveform at the predictor's rate.

    Returns ``time_s`` (n,) window centres in s, ``probs`` (n, C) after smoothing, ``labels``,
    ``level_time_s``/``level_db`` (RMS dBFS per hop), ``note`` and the settings used. With a
    ``gate`` (:class:`~ser.inference.speech_gate.SpeechGate`), ``speech`` (n,) is each window's
    share of speech; windows below ``gate.min_speech`` are labelled ``no speech``, the network
    does not run on them and their ``probs`` row is NaN (smoothing averages speech windows
    only). ``speech_mask`` (T,) is the gate's sample mask when the caller has it already;
    ``batch_size`` windows go to the network at a time (its working memory grows with it).
    With ``min_confidence`` (0-1), a window whose top probability (after smoothing) is below
    it is labelled ``unsure``; its ``probs`` row stays.
    """
    rate = int(predictor.sample_rate)
    window_s = float(window_s or predictor.block_seconds)
    audio = np.asarray(audio, np.float32).reshape(-1)
    windows = sliding_windows(audio, rate, window_s, hop_s)
    classes = list(predictor.classes)
    speech = None
    speaks = np.ones(len(windows), bool)
    if gate is not None:
        starts = np.round(windows.starts_s * rate).astype(np.int64)
        mask = gate.mask(audio) if speech_mask is None else speech_mask
        speech = window_fractions(mask, starts, windows.frames.shape[1])
        speaks = np.asarray(gate.speaks(speech), bool)
    probs = np.full((len(windows), len(classes)), np.nan)
    probs[speaks] = predict_some(predictor, windows.frames, np.flatnonzero(speaks), batch_size)
    probs = smooth_probabilities(probs, smooth) if speaks.all() else smooth_speaking(probs, smooth)
    unsure = unsure_rows(probs, min_confidence)
    labels = [NO_SPEECH if not ok else UNSURE if doubt else classes[int(np.argmax(p))]
              for p, ok, doubt in zip(probs, speaks, unsure)]
    level_t, level = rms_db(audio, rate, hop_s)
    return {"classes": classes, "time_s": windows.centres_s, "starts_s": windows.starts_s,
            "probs": probs, "labels": labels, "speech": speech,
            "min_speech": None if gate is None else gate.min_speech, "min_confidence": min_confidence,
            "level_time_s": level_t, "level_db": level, "duration_s": audio.shape[0] / rate,
            "window_s": window_s, "hop_s": hop_s, "smooth": int(smooth or 0), "note": windows.note}


def predict_some(predictor, frames: np.ndarray, rows: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(len(rows), C) float64 probabilities of ``frames[rows]`` (a strided view of windows),
    copying ``batch_size`` frames at a time."""
    out = [np.asarray(predictor.predict_blocks(np.ascontiguousarray(frames[rows[i: i + batch_size]])),
                      dtype=np.float64) for i in range(0, len(rows), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(predictor.classes)))


def smooth_speaking(probs: np.ndarray, k: int) -> np.ndarray:
    """:func:`~ser.inference.windows.smooth_probabilities` over the rows that are not NaN (the
    windows with speech): each is averaged with the speech windows among its ``k``
    neighbours; NaN rows stay NaN."""
    smooth_probabilities(probs[:0], k)  # the same check of k
    k, n = int(k or 0), len(probs)
    if k <= 1 or n <= 1:
        return probs.copy()
    valid = ~np.isnan(probs).any(axis=1)
    filled = np.where(valid[:, None], probs, 0.0)
    csum = np.vstack([np.zeros((1, probs.shape[1])), np.cumsum(filled, axis=0)])
    count = np.concatenate([[0], np.cumsum(valid)])
    lo = np.clip(np.arange(n) - (k - 1) // 2, 0, n)
    hi = np.clip(np.arange(n) + k // 2 + 1, 0, n)
    out = (csum[hi] - csum[lo]) / np.maximum(count[hi] - count[lo], 1)[:, None]
    out[~valid] = np.nan
    return out


def write_timeline_csv(path: Path, result: dict) -> Path:
    """Columns ``time_s``, one probability per class (0-1; empty for a window without speech,
    which the network did not classify), ``label`` (the leading class, ``no speech``, or
    ``unsure`` for a window whose top probability is below ``min_confidence``) and,
    with a speech gate, ``speech`` (the window's share of speech, 0-1)."""
    speech = result.get("speech")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time_s", *result["classes"], "label", *(["speech"] if speech is not None else [])])
        for i, (t, p, label) in enumerate(zip(result["time_s"], result["probs"], result["labels"])):
            writer.writerow([f"{t:.3f}", *("" if np.isnan(v) else f"{v:.5f}" for v in p), label,
                             *([f"{speech[i]:.3f}"] if speech is not None else [])])
    return path


def unique_names(paths: Sequence[Path]) -> list[str]:
    """File stems, with the parent folder added where two recordings share a stem."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def write_timelines(predictor, paths: Sequence[Path], out_dir: Path, window_s: float | None = None,
                    hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None,
                    min_confidence: float | None = None) -> list[dict]:
    """A CSV and a PNG per readable recording in ``out_dir``; files that fail to decode are
    skipped here (``predict_audio`` already reports them). Prints once if any was resampled.
    ``min_confidence``: windows whose top probability is below it are ``unsure``."""
    from ser.errors import SerError

    out_dir.mkdir(parents=True, exist_ok=True)
    rate = int(predictor.sample_rate)
    written, resampled = [], []
    for path, name in zip(paths, unique_names(paths)):
        try:
            audio, source = decode_audio(path, rate)
        except SerError:
            continue
        result = timeline(predictor, audio, window_s, hop_s, smooth, gate,
                          min_confidence=min_confidence)
        written.append(write_timeline_files(result, out_dir, name, path))
        if resampled_from(source, rate):
            resampled.append(f"{path.name} ({source.split(',')[0]})")
    note_resampled(resampled, rate)
    return written


def write_timeline_files(result: dict, out_dir: Path, name: str, path: Path) -> dict:
    """``<name>.timeline.csv`` and ``.png`` of one :func:`timeline` of ``path`` in ``out_dir``;
    what was written, as :func:`write_timelines` lists it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_timeline_csv(out_dir / f"{name}.timeline.csv", result)
    png_path = timeline_figure(out_dir / f"{name}.timeline.png", result, path.name)
    return {"path": str(path), "csv": str(csv_path), "png": str(png_path),
            "windows": len(result["time_s"]), "note": result["note"]}


def resampled_from(source: str, rate: int) -> bool:
    """Whether a recording described as ``source`` (``44100 Hz, 2 channels``) was resampled to
    ``rate`` Hz."""
    own = source.split(" ", 1)[0]
    return own.isdigit() and int(own) != rate


def note_resampled(resampled: list[str], rate: int) -> None:
    """One line naming the recordings that were resampled (none: nothing)."""
    if resampled:
        print(f"Resampled {len(resampled)} recording(s) to the model's {rate} Hz: "
              + ", ".join(resampled[:5]) + (" ..." if len(resampled) > 5 else ""), flush=True)


def timeline_summary(result: dict, digits: int = 4) -> dict:
    """A :func:`timeline` as plain JSON: lists instead of arrays, probabilities per class, and
    the clear stretches, so a client (``ser.predict output=json``, the server, the page) can draw
    it without the CSV or PNG. With a speech gate: ``speech`` (share per window),
    ``min_speech`` and ``no_speech`` (the stretches labelled ``no speech``), and None for the
    probabilities of a window without speech (the network did not run on it). With
    ``min_confidence``: it, and ``unsure`` (the stretches labelled ``unsure``, whose
    probabilities stay). Clear stretches hold neither."""
    probs, classes = np.asarray(result["probs"]), result["classes"]
    r = lambda values: [None if np.isnan(v) else round(float(v), digits)  # noqa: E731
                        for v in np.asarray(values, np.float64)]
    speaks = speaking(result)
    stretches = clear_stretches(probs, result["starts_s"], result["window_s"], result["hop_s"],
                                speaks=named(result))
    gated = {} if result.get("speech") is None else {
        "speech": r(result["speech"]), "min_speech": result["min_speech"],
        "no_speech": [{"start_s": round(lo, 3), "end_s": round(hi, 3)} for lo, hi in
                      no_speech_stretches(speaks, result["starts_s"], result["window_s"], result["hop_s"])]}
    if result.get("min_confidence") is not None:
        gated.update(min_confidence=result["min_confidence"],
                     unsure=[{"start_s": round(lo, 3), "end_s": round(hi, 3)} for lo, hi in
                             unsure_stretches(result)])
    return {**gated, "window_s": result["window_s"], "hop_s": result["hop_s"], "smooth": result["smooth"],
            "note": result["note"], "time_s": r(result["time_s"]), "labels": list(result["labels"]),
            "probabilities": {c: r(probs[:, i]) for i, c in enumerate(classes)},
            "level_time_s": r(result["level_time_s"]), "level_db": r(result["level_db"]),
            "stretches": [{"start_s": round(lo, 3), "end_s": round(hi, 3), "emotion": classes[c],
                           "mean": round(mean, digits)} for lo, hi, c, mean in stretches]}


def stretches_line(summary: dict) -> str:
    """The clear stretches (and those without speech, and the unsure ones) of a
    :func:`timeline_summary` in one line, for terminals."""
    found = [(s["start_s"], f"{s['start_s']:.2f}–{s['end_s']:.2f} s {s['emotion']} {100 * s['mean']:.0f}%")
             for s in summary["stretches"]]
    found += [(s["start_s"], f"{s['start_s']:.2f}–{s['end_s']:.2f} s {NO_SPEECH}")
              for s in summary.get("no_speech", [])]
    found += [(s["start_s"], f"{s['start_s']:.2f}–{s['end_s']:.2f} s {UNSURE}")
              for s in summary.get("unsure", [])]
    parts = [text for _, text in sorted(found)]
    return ("clear stretches: " + ", ".join(parts)) if parts else (
        f"no stretch where one emotion averages {100 * CLEAR_THRESHOLD:.0f}%")
