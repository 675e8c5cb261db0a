"""openSMILE functionals of 1-s blocks (``model=opensmile_svm``'s features), importing only
numpy and opensmile, so that worker processes start quickly (``workers`` > 1).

Each block is first peak-normalised to the largest int16 value, because openSMILE converts a
float signal to 16-bit integers by scaling with 32768 *without clipping*: a mixed block whose
peak exceeds full scale (speech plus noise at 0 dB easily does) would wrap around. The
normalisation is also the images' infinity norm and ``mfcc_svm``'s: the recording gain never
reaches the features, the level contour within a block does.

Much of each block's cost is openSMILE's per-signal set-up (its component graph is built anew
for each signal; the Python API cannot reuse it; docs/speed.md has the figures), so one
:class:`opensmile.Smile` object is reused but blocks are still processed one by one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ser.errors import SerError

# feature_set -> (opensmile.FeatureSet member, number of functionals)
FEATURE_SETS = {"egemaps": ("eGeMAPSv02", 88), "compare": ("ComParE_2016", 6373)}
FEATURE_VERSION = 1             # bump when the preprocessing below changes: cached features go stale
INT16_PEAK = 32767.0 / 32768.0  # peak after normalisation: openSMILE's x * 32768 stays in int16
INSTALL = "pip install 'opensmile>=2.5'"


def load_opensmile():
    """The ``opensmile`` module, or one SerError saying how to install it."""
    try:
        import opensmile
    except Exception as exc:  # ImportError, or a broken install (missing shared library ...)
        raise SerError(f"model=opensmile_svm needs the opensmile package, which could not be "
                       f"imported ({type(exc).__name__}: {exc}). Install it into this "
                       f"environment ({INSTALL}; it bundles the openSMILE library for Linux, "
                       "macOS and Windows), or use model=mfcc_svm, which needs no extra "
                       "package.") from None
    return opensmile


def make_smile(feature_set: str):
    """A :class:`opensmile.Smile` computing ``feature_set``'s functionals (one row per signal)."""
    opensmile = load_opensmile()
    try:
        return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set][0]),
                               feature_level=opensmile.FeatureLevel.Functionals)
    except Exception as exc:
        raise SerError(f"openSMILE could not set up the {feature_set} feature set "
                       f"({type(exc).__name__}: {exc}); the opensmile package may be damaged: "
                       f"reinstall it ({INSTALL}).") from None


def peak_to_int16_range(blocks: np.ndarray) -> np.ndarray:
    """(B, T) -> (B, T) float32 with each block's max |x| = :data:`INT16_PEAK` (silence stays 0)."""
    x = np.asarray(blocks, dtype=np.float32)
    peak = np.abs(x).max(axis=-1, keepdims=True)
    scaled = x * (np.float32(INT16_PEAK) / np.where(peak > 0, peak, np.float32(1.0)))
    return np.clip(scaled, -INT16_PEAK, INT16_PEAK)


def smile_functionals(smile, blocks: np.ndarray, sample_rate: int) -> np.ndarray:
    """openSMILE functionals of each block: (B, T) float waveforms -> (B, D) float32.

    Each block is processed on its own (``smile(signal, sampling_rate)``, the raw-array form of
    ``process_signal``), so its features never depend on its neighbours. A failure of the
    library, or a block too short to yield functionals (openSMILE then returns NaN), stops
    with one SerError.
    """
    x = peak_to_int16_range(blocks)
    if x.ndim != 2:
        raise ValueError(f"blocks must be (B, T) waveforms; got shape {x.shape}")
    rows = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Segment too short")  # reported below instead
        for block in x:
            try:
                out = smile(block, int(sample_rate))
            except Exception as exc:
                raise SerError(f"openSMILE failed on a block of {x.shape[1]} samples at "
                               f"{sample_rate} Hz ({type(exc).__name__}: {exc}).") from None
            rows.append(np.asarray(out, dtype=np.float32).reshape(-1))
    features = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    if not np.isfinite(features).all():
        raise SerError(f"openSMILE returned no functionals (NaN) for blocks of {x.shape[1]} "
                       f"samples ({x.shape[1] / sample_rate:.3g} s at {sample_rate} Hz): a signal "
                       "needs a few frames of 25-60 ms to be summarised. Use blocks of about "
                       "1 s (data.block_seconds=1.0) at the corpus rate (features.sample_rate).")
    return features


_SMILES: dict[str, Any] = {}


def extract_in_worker(feature_set: str, blocks: np.ndarray, sample_rate: int) -> np.ndarray:
    """A worker process's share of a chunk: (B, T) -> (B, D) float32, by the process's own
    Smile, built on first use and reused."""
    if feature_set not in _SMILES:
        _SMILES[feature_set] = make_smile(feature_set)
    return smile_functionals(_SMILES[feature_set], blocks, sample_rate)
