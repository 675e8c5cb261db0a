"""Sliding windows over a waveform and smoothing of their probabilities.

The network classifies fixed-length blocks (1 s by default); a timeline slides that block over
the recording in steps of ``hop`` seconds so changes of emotion show up at hop resolution rather
than block resolution. Frames are a strided view (no copy): an hour at a 0.25-s hop would be
14,400 overlapping windows, ~0.9 GB if copied; callers copy one batch at a time.

A model may also abstain: with ``min_confidence`` (a probability in (0, 1)), a window or block
whose top probability is below it is labelled :data:`UNSURE` instead of a class name, its
probabilities kept (:func:`unsure_rows`, :func:`window_label`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ser.errors import SerError

DEFAULT_HOP_S = 0.25
MODEL_THRESHOLD = "model"  # min_confidence=model: the threshold the run chose on its validation part
UNSURE = "unsure"  # the label of a window or block whose top probability is below min_confidence


@dataclass
class Windows:
    frames: np.ndarray       # (n, window_samples) float32, a read-only strided view when n > 1
    starts_s: np.ndarray     # (n,) window start times, seconds from the recording's start
    window_s: float
    hop_s: float
    note: str | None = None  # e.g. the recording was shorter than one window and was padded

    @property
    def centres_s(self) -> np.ndarray:
        """(n,) the time each window's probabilities are drawn at."""
        return self.starts_s + self.window_s / 2

    def __len__(self) -> int:
        return len(self.frames)


def window_samples(window_s: float, hop_s: float, sample_rate: int) -> tuple[int, int]:
    """(window, hop) in samples; SerError for lengths that give no sample."""
    window, hop = int(round(window_s * sample_rate)), int(round(hop_s * sample_rate))
    if window < 1 or hop < 1:
        raise SerError(f"window={window_s:g} s and hop={hop_s:g} s must both be positive and at "
                       f"least one sample at {sample_rate} Hz; e.g. window=1 hop=0.25.")
    return window, hop


def sliding_windows(audio: np.ndarray, sample_rate: int, window_s: float,
                    hop_s: float = DEFAULT_HOP_S) -> Windows:
    """(T,) waveform -> windows of ``window_s`` every ``hop_s`` seconds, the first at 0.

    ``n = 1 + (T - window) // hop``; the samples after the last whole window (less than one
    hop) are not covered. A recording shorter than one window is zero-padded to a single
    window, with a note, so short clips still get a (less certain) answer.
    """
    window, hop = window_samples(window_s, hop_s, sample_rate)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.shape[0] < window:
        padded = np.zeros((1, window), np.float32)
        padded[0, : audio.shape[0]] = audio
        note = (f"{audio.shape[0] / sample_rate:.2f} s is shorter than one {window_s:g}-s window: "
                "classified once, zero-padded")
        return Windows(padded, np.zeros(1), window_s, hop_s, note)
    frames = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop]
    return Windows(frames, np.arange(len(frames)) * hop / sample_rate, window_s, hop_s)


def predict_windows(predictor, windows: Windows, batch_size: int = 32) -> np.ndarray:
    """(n, C) float64 probabilities of every window, copying ``batch_size`` frames at a time."""
    out = [np.asarray(predictor.predict_blocks(np.ascontiguousarray(windows.frames[i: i + batch_size])),
                      dtype=np.float64) for i in range(0, len(windows), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(predictor.classes)))


def smooth_probabilities(probs: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average of (n, C) probabilities over ``k`` windows (0 or 1: unchanged).

    At the edges the average is over the windows that exist, so rows still sum to 1 and the
    first and last windows are not pulled towards zero.
    """
    probs = np.asarray(probs, dtype=np.float64)
    k = int(k or 0)
    if k < 0:
        raise SerError(f"smooth={k}: give the number of windows to average (0 or 1: no smoothing).")
    if k <= 1 or len(probs) <= 1:
        return probs.copy()
    n = len(probs)
    csum = np.vstack([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
    lo = np.clip(np.arange(n) - (k - 1) // 2, 0, n)
    hi = np.clip(np.arange(n) + k // 2 + 1, 0, n)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def rms_db(audio: np.ndarray, sample_rate: int, hop_s: float, floor_db: float = -100.0
           ) -> tuple[np.ndarray, np.ndarray]:
    """(times in s at each hop's centre, level in dBFS) of ``hop_s`` frames; silence = ``floor_db``."""
    hop = max(1, int(round(hop_s * sample_rate)))
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    n = max(1, int(np.ceil(audio.shape[0] / hop)))
    padded = np.zeros(n * hop)
    padded[: audio.shape[0]] = audio
    rms = np.sqrt((padded.reshape(n, hop) ** 2).mean(axis=1))
    level = 20 * np.log10(np.maximum(rms, 10 ** (floor_db / 20)))
    return (np.arange(n) + 0.5) * hop / sample_rate, level


def parse_min_confidence(value: Any) -> float | None:
    """``min_confidence=`` as a probability above 0 and below 1; None, empty, ``none`` or
    ``null``: None (no threshold). SerError of one line for anything else (0, 1, nan, text)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        share = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        share = math.nan
    if not 0.0 < share < 1.0:  # nan fails both comparisons
        text = str(value).strip()
        text = text if len(text) <= 30 and text.isprintable() and "'" not in text else repr(text[:30])
        raise SerError(f"min_confidence={text}: give the probability a window's leading class must "
                       "reach to be named, a finite number above 0 and below 1 (e.g. 0.6); a window "
                       f"below it is labelled {UNSURE!r}; {MODEL_THRESHOLD} for the threshold the run chose "
                       "on its validation part, none for no threshold.")
    return share


def resolve_min_confidence(value: Any, model_threshold: float | None) -> float | None:
    """``min_confidence=`` once the model is loaded: ``model`` (every command's default) is the
    threshold the run chose on its validation part (``model_threshold``; None: it chose none),
    anything else as :func:`parse_min_confidence` reads it."""
    if isinstance(value, str) and value.strip().lower() == MODEL_THRESHOLD:
        return model_threshold
    return parse_min_confidence(value)


def model_threshold(predictor: Any) -> float | None:
    """A predictor's own abstention threshold (None for one without)."""
    return getattr(predictor, "min_confidence", None)


def unsure_rows(probs: np.ndarray, min_confidence: float | None) -> np.ndarray:
    """(n,) bool: the rows of (n, C) probabilities whose top probability is below
    ``min_confidence`` (none when it is None). A NaN row (a window without speech, not
    classified) is never unsure."""
    probs = np.asarray(probs, np.float64)
    if min_confidence is None or probs.size == 0:
        return np.zeros(len(probs), bool)
    probs = probs.reshape(len(probs), -1)
    classified = ~np.isnan(probs).any(axis=1)
    top = np.where(classified, np.nan_to_num(probs).max(axis=1), np.inf)
    return classified & (top < min_confidence)


def window_label(probs: np.ndarray, classes: Sequence[str], min_confidence: float | None = None) -> str:
    """The leading class of one window's probabilities, or :data:`UNSURE` when its top
    probability is below ``min_confidence``."""
    probs = np.asarray(probs, np.float64)
    if min_confidence is not None and float(probs.max()) < min_confidence:
        return UNSURE
    return classes[int(probs.argmax())]
