"""Where along a :func:`~ser.inference.timeline.timeline` something holds: the windows with
speech and those given an emotion, and the stretches (start s, end s) of windows that are
``no speech``, ``unsure``, or led clearly by one class. The PNG, the JSON summary and the
terminal line all mark the same stretches, so they are worked out once here, on the windows'
starts, length and hop alone.
"""

from __future__ import annotations

import numpy as np

from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import UNSURE

CLEAR_THRESHOLD = 0.5  # a stretch is marked when its leading class averages at least this


def speaking(result: dict) -> np.ndarray:
    """(n,) bool: the windows of a :func:`~ser.inference.timeline.timeline` with enough speech (all
    without a gate)."""
    return np.array([label != NO_SPEECH for label in result["labels"]], bool)


def named(result: dict) -> np.ndarray:
    """(n,) bool: the windows of a :func:`~ser.inference.timeline.timeline` given an emotion: neither
    ``no speech`` nor ``unsure``."""
    return np.array([label not in (NO_SPEECH, UNSURE) for label in result["labels"]], bool)


def unsure_stretches(result: dict) -> list[tuple[float, float]]:
    """(start s, end s) of each run of ``unsure`` windows of a
    :func:`~ser.inference.timeline.timeline`."""
    sure = np.array([label != UNSURE for label in result["labels"]], bool)
    return no_speech_stretches(sure, result["starts_s"], result["window_s"], result["hop_s"])


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

