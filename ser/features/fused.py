"""Numba kernels for the CPU image pipeline's element-wise stages.

Eager torch makes the dB-and-colour step as eight passes over every spectrogram (power, two
reductions, clamp, log, shift, scale, clamp, int conversion, table lookup) and the
normalisation as three; each pass is fast but streams the chunk through the cache again, and
each costs a Python call under the GIL while another thread makes its own chunk. These kernels
do the same arithmetic in three loops per block and one loop per image, release the GIL, and
vectorise (AVX-512 / AVX2 where the CPU has them), which makes the whole pipeline faster than
the torch ops they replace (docs/speed.md has the figures). numba comes with
librosa, so this adds no dependency; where it cannot compile, the pipeline falls back to the
torch ops (:class:`ser.features.spectrogram.SpectrogramImage` warns once).

The log is computed from the float's exponent and mantissa (a 9th-order atanh series on
[1/√2, √2)), not with the C library's scalar ``log``, which would keep the loop from
vectorising; it agrees with float32 ``log`` to a few units in the last place, so about one
pixel in 100,000 lands on the neighbouring colour-table row at a row boundary.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a librosa dependency
    njit = None

_LN2 = np.float32(math.log(2.0))
_SQRT2 = np.float32(math.sqrt(2.0))
_MANTISSA = np.float32(1.0 / (1 << 23))
# fastmath lets the loops vectorise; error_model="numpy" drops the division-by-zero checks
# that would otherwise stop them from vectorising (the divisor m + 1 is never zero here).
_JIT = dict(nogil=True, fastmath=True, boundscheck=False, error_model="numpy", cache=True)


def available() -> bool:
    """Whether numba is importable (the kernels compile on first use)."""
    return njit is not None


def _power_and_range(spectrum: np.ndarray, power: np.ndarray, floor: np.float32
                     ) -> tuple[np.float32, np.float32]:
    """|X|² of one block's spectrum (interleaved re, im) floored at ``floor``, into ``power``;
    returns its smallest and largest value."""
    low = np.float32(3.0e38)
    high = np.float32(0.0)
    for k in range(power.shape[0]):
        re = spectrum[2 * k]
        im = spectrum[2 * k + 1]
        value = max(re * re + im * im, floor)
        power[k] = value
        low = min(low, value)
        high = max(high, value)
    return low, high


def _table_rows(bits: np.ndarray, rows: np.ndarray, bottom: np.float32, gain: np.float32,
                last: np.float32) -> None:
    """``floor((ln p - bottom) · gain)`` clipped to [0, last] for the float32 bit patterns
    ``bits`` of positive powers ``p``."""
    for k in range(bits.shape[0]):
        word = bits[k]
        exponent = np.float32((word >> 23) - 127)
        mantissa = np.float32(1.0) + np.float32(word & 0x007FFFFF) * _MANTISSA
        high = np.float32(mantissa > _SQRT2)  # fold into [1/√2, √2): the series converges fast
        mantissa = mantissa * (np.float32(1.0) - np.float32(0.5) * high)
        exponent = exponent + high
        s = (mantissa - np.float32(1.0)) / (mantissa + np.float32(1.0))
        s2 = s * s
        series = np.float32(1.0) + s2 * (np.float32(1 / 3) + s2 * (
            np.float32(1 / 5) + s2 * (np.float32(1 / 7) + s2 * np.float32(1 / 9))))
        log = exponent * _LN2 + np.float32(2.0) * s * series
        value = (log - bottom) * gain
        rows[k] = np.int32(min(max(value, np.float32(0.0)), last))


def _lookup_transposed(rows: np.ndarray, table: np.ndarray, words: np.ndarray, n_frames: int,
                       n_freq: int) -> None:
    """words[f, t] = table[rows[t, f]]: colour words in image orientation, 16 frames at a
    time so that both sides stay in cache."""
    last = table.shape[0] - 1
    for start in range(0, n_frames, 16):
        stop = min(start + 16, n_frames)
        for f in range(n_freq):
            for t in range(start, stop):
                row = min(max(rows[t * n_freq + f], 0), last)  # never read outside the table
                words[f * n_frames + t] = table[row]


def _spectrum_words(spectra: np.ndarray, table: np.ndarray, floor: np.float32,
                    top_db_ln: np.float32, words: np.ndarray, power: np.ndarray,
                    rows: np.ndarray, n_frames: int, n_freq: int) -> None:
    levels = table.shape[0]
    bits = power.view(np.int32)
    for block in range(spectra.shape[0]):
        low, high = _power_and_range(spectra[block], power, floor)
        top = np.float32(math.log(high))
        bottom = max(np.float32(math.log(low)), top - top_db_ln)
        span = top - bottom
        gain = np.float32(levels / span) if span > 0 else np.float32(0.0)
        _table_rows(bits, rows, bottom, gain, np.float32(levels - 1))
        _lookup_transposed(rows, table, words[block], n_frames, n_freq)


def _normalise(rgba: np.ndarray, gain: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """out[b, c, h, w] = rgba[b, h, w, c] · gain[c] + offset[c] for c < 3, one pass."""
    g0, g1, g2 = gain[0], gain[1], gain[2]
    o0, o1, o2 = offset[0], offset[1], offset[2]
    for b in range(rgba.shape[0]):
        for h in range(rgba.shape[1]):
            pixels = rgba[b, h]
            red, green, blue = out[b, 0, h], out[b, 1, h], out[b, 2, h]
            for w in range(rgba.shape[2]):
                red[w] = np.float32(pixels[w, 0]) * g0 + o0
                green[w] = np.float32(pixels[w, 1]) * g1 + o1
                blue[w] = np.float32(pixels[w, 2]) * g2 + o2


if njit is not None:
    _power_and_range = njit(**_JIT)(_power_and_range)
    _table_rows = njit(**_JIT)(_table_rows)
    _lookup_transposed = njit(**_JIT)(_lookup_transposed)
    _spectrum_words = njit(**_JIT)(_spectrum_words)
    _normalise = njit(**_JIT)(_normalise)


def spectrum_words(spectra: np.ndarray, table: np.ndarray, floor: float, top_db_log: float,
                   words: np.ndarray, power: np.ndarray, rows: np.ndarray) -> None:
    """Complex spectra -> colour-table words in image orientation.

    ``spectra`` (B, frames, F, 2) float32: each block's STFT (real and imaginary parts,
    frequency descending). ``table`` (L,) int32: RGBA colour words. ``floor``: the power floor
    (``amin²``); ``top_db_log``: the dB range below each block's maximum, in natural-log
    power (:attr:`StftDb.top_db_log`). ``words`` (B, F, frames) int32 receives
    ``table[floor(L · scaled dB)]`` exactly as :meth:`StftDb.levels` and
    :meth:`JetColour.lookup` define it; ``power`` (frames·F,) float32 and ``rows`` (frames·F,)
    int32 are work space.
    """
    batch, n_frames, n_freq, _ = spectra.shape
    _spectrum_words(spectra.reshape(batch, -1), table, np.float32(floor),
                    np.float32(top_db_log), words.reshape(batch, -1),
                    power, rows, n_frames, n_freq)


def normalise(rgba: np.ndarray, gain: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """RGBA bytes (B, H, W, 4) -> ``out`` (B, 3, H, W) float32: ``byte · gain + offset``."""
    _normalise(rgba, gain, offset, out)
