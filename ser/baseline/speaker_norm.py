"""Per-speaker standardisation of block features (``model.speaker_norm``, off by default).

Much of what separates block features is who speaks, not how: pitch level, vocal-tract length,
microphone. The field commonly z-scores every feature with the mean and standard deviation of
each speaker's own blocks before the classifier (:func:`speaker_standardise`), so that what is
left is each block's departure from its speaker's habit. Statistics come from the blocks of the
same speaker in the same part: training speakers from their training blocks, validation speakers
from their validation blocks, and each test speaker from that speaker's own blocks of the one
test set being scored (the 0 dB set's blocks for the 0 dB set). That uses the test speaker's
unlabelled test audio at test time (transductive), as the field does; labels are never used. The
global standardisation and the SVM then follow as without it. The caller
(:mod:`ser.baseline.run`) knows the speakers and calls
:meth:`ser.baseline.estimator.SvmBaseline.normalise`; the fitted SVM itself is unchanged.

Its own module because it is plain array arithmetic on features and speaker names, with no
SVM in it: the estimator applies it, and the run uses :func:`unknown_speakers` on its items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ser.errors import SerError

# A feature whose standard deviation within one speaker is under this (relative to its mean's
# size, at least 1) is only centred there: one block, or a value the speaker never changes.
SPEAKER_STD_FLOOR = 1e-8
SPEAKER_NORM_ON = ("speaker",)          # model.speaker_norm's string values that switch it on
SPEAKER_NORM_OFF = ("none", "off", "false")


def speaker_norm_setting(value: Any) -> bool:
    """``model.speaker_norm`` as a bool: ``false``/``null``/``none`` -> False (the global
    scaler only); ``true``/``speaker`` -> True (per-speaker standardisation first)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in SPEAKER_NORM_ON or word == "true":
        return True
    if word in SPEAKER_NORM_OFF:
        return False
    raise SerError(f"model.speaker_norm={value!r}: use false (one standardisation over the "
                   "training blocks, as before) or true / speaker (each feature z-scored with "
                   "the mean and std of its speaker's own blocks in the same part or test set "
                   "first; at test time that uses the test speaker's unlabelled test blocks).")


def unknown_speakers(speakers: np.ndarray) -> np.ndarray:
    """(N,) bool: items whose speaker is not known (None or an empty name, as a manifest
    without a speaker column gives)."""
    return np.array([s is None or not str(s).strip() for s in speakers], dtype=bool)


def _standardise_rows(x: np.ndarray, rows: np.ndarray, basis: np.ndarray,
                      floor: float) -> np.ndarray:
    """x[rows] (R, D) z-scored with the mean and std (ddof 0) of x[basis]; a feature whose std
    is under ``floor`` times max(1, |mean|) is only centred, so one block gives zeros."""
    sample = x[basis]
    mean, std = sample.mean(axis=0), sample.std(axis=0)
    std = np.where(std < floor * np.maximum(1.0, np.abs(mean)), 1.0, std)
    return (x[rows] - mean) / std


def speaker_standardise(features: np.ndarray, speakers: np.ndarray,
                        fit: np.ndarray | None = None,
                        floor: float = SPEAKER_STD_FLOOR) -> np.ndarray:
    """(N, D) ``features``, each row z-scored with its speaker's mean and std per feature.

    ``speakers`` (N,): each row's speaker (any hashable; None or "" means unknown). The
    statistics of a speaker come from that speaker's rows where ``fit`` (N,) bool is true
    (None: all rows; a speaker with no such row uses all its rows): a test set's extra
    overlapping windows can then follow its grid blocks' statistics without changing them.
    Rows of unknown speakers are standardised with the whole set's statistics instead. A
    feature (nearly) constant within a speaker is only centred (see :data:`SPEAKER_STD_FLOOR`),
    so a speaker with a single block gets zeros, never NaN or inf. Returns a new (N, D)
    float64 array; rows keep their order.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(speakers) != len(x):
        raise SerError(f"Per-speaker standardisation needs (N, D) features and N speakers; got "
                       f"features of shape {x.shape} and {len(speakers)} speakers.")
    fit = np.ones(len(x), dtype=bool) if fit is None else np.asarray(fit, dtype=bool)
    out = np.empty_like(x)
    unknown = unknown_speakers(speakers)
    if unknown.any():
        everyone = np.ones(len(x), dtype=bool)
        out[unknown] = _standardise_rows(x, unknown, fit if fit.any() else everyone, floor)
    known = np.flatnonzero(~unknown)
    if len(known):
        names = np.array([str(s) for s in np.asarray(speakers, dtype=object)[known]], dtype=object)
        _, group = np.unique(names, return_inverse=True)
        for g in range(int(group.max()) + 1):
            rows = known[group == g]
            basis = rows[fit[rows]]
            out[rows] = _standardise_rows(x, rows, basis if len(basis) else rows, floor)
    return out

