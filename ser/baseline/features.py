"""Per-block MFCC statistics (and optional pitch and energy statistics): the baseline's input.

Every block is first peak-normalised (max |x| = 1), the infinity-norm step the spectrogram
images start from, so the recording gain never reaches the features: what remains is the
spectral envelope and how it moves within the block (and, with ``prosody``, the pitch contour
and the energy envelope relative to the block's peak). Every statistic is computed per block,
never across a batch, so a block's features do not depend on what it was batched with.

Layout of one feature vector (``feature_names`` spells it out):

    mfcc_mean[n_mfcc] | mfcc_std[n_mfcc] | delta_std[n_mfcc] | (prosody) 6 values
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np

TOP_DB = 80.0          # log-mel floor below each block's maximum, as librosa.power_to_db(top_db=80)
POWER_FLOOR = 1e-10    # smallest mel power taken to the log (librosa's amin)
DELTA_WIDTH = 9        # frames of the delta regression window (librosa's default)
PITCH_FRAME = 1024     # samples per YIN frame (64 ms at 16 kHz): YIN needs over two periods of fmin
PITCH_GATE_DB = 25.0   # frames this far below the block's loudest frame carry no pitch statistics


def peak_normalise(blocks: np.ndarray) -> np.ndarray:
    """Divide each block by its largest absolute sample: (B, T) -> (B, T) float32.

    A silent block (all zeros) stays all zeros instead of becoming NaN, as in the image
    pipeline's ``InfinityNorm``.
    """
    x = np.asarray(blocks, dtype=np.float32)
    peak = np.abs(x).max(axis=-1, keepdims=True)
    return x / np.where(peak > 0, peak, np.float32(1.0))


def log_mel(blocks: np.ndarray, sample_rate: int, n_fft: int = 512, hop_length: int = 160,
            n_mels: int = 40) -> np.ndarray:
    """Mel power in dB, floored ``TOP_DB`` below each block's own maximum: (B, T) -> (B, n_mels, F).

    ``F = 1 + T // hop_length`` frames (centred). ``librosa.feature.mfcc(y=...)`` floors at the
    maximum of the whole array, which would make a block's features depend on its batch; this
    floors per block instead.
    """
    with warnings.catch_warnings():  # a block shorter than n_fft is padded, which is fine here
        warnings.filterwarnings("ignore", message=".*n_fft=.* is too large.*")
        power = librosa.feature.melspectrogram(y=blocks, sr=sample_rate, n_fft=n_fft,
                                               hop_length=hop_length, n_mels=n_mels, power=2.0)
    db = 10.0 * np.log10(np.maximum(power, POWER_FLOOR))
    return np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - TOP_DB)


def _delta(frames: np.ndarray) -> np.ndarray:
    """First-order deltas along the last axis (frames); zeros when a block has under 3 frames."""
    n = frames.shape[-1]
    width = min(DELTA_WIDTH, n if n % 2 else n - 1)
    if width < 3:
        return np.zeros_like(frames)
    return librosa.feature.delta(frames, width=width, axis=-1)


def mfcc_statistics(blocks: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_fft: int = 512,
                    hop_length: int = 160, n_mels: int = 40) -> np.ndarray:
    """Means and standard deviations of the MFCCs, and standard deviations of their deltas.

    blocks: (B, T) peak-normalised waveforms at ``sample_rate`` Hz. Returns (B, 3 * n_mfcc)
    float64: the mean of each coefficient over the block's frames, its standard deviation, and
    the standard deviation of its delta (how fast the envelope moves; the mean delta of a
    block is close to zero and says little).
    """
    mfcc = librosa.feature.mfcc(S=log_mel(blocks, sample_rate, n_fft, hop_length, n_mels),
                                n_mfcc=n_mfcc).astype(np.float64)
    return np.concatenate([mfcc.mean(-1), mfcc.std(-1), _delta(mfcc).std(-1)], axis=-1)


def prosody_statistics(blocks: np.ndarray, sample_rate: int, hop_length: int = 160,
                       fmin: float = 65.0, fmax: float = 500.0) -> np.ndarray:
    """Pitch and energy statistics per block: (B, T) peak-normalised -> (B, 6) float64.

    Columns: mean, standard deviation and 10-90 % range of the pitch in semitones above
    100 Hz (YIN, ``fmin``-``fmax`` Hz, over the frames within ``PITCH_GATE_DB`` of the block's
    loudest frame, so pauses and noise floor do not count as pitch), then the same three of the
    frame RMS energy in dB relative to full scale (all frames). A silent block gives zeros.
    """
    frame_kw = dict(frame_length=PITCH_FRAME, hop_length=hop_length, center=True)
    rms = librosa.feature.rms(y=blocks, **frame_kw)[..., 0, :].astype(np.float64)  # (B, F)
    energy = 20.0 * np.log10(np.maximum(rms, 1e-10))
    with np.errstate(divide="ignore", invalid="ignore"):  # silent frames: 0/0 in YIN's difference
        f0 = librosa.yin(blocks, fmin=fmin, fmax=fmax, sr=sample_rate, **frame_kw).astype(np.float64)
        pitch = 12.0 * np.log2(f0 / 100.0)
    frames = min(pitch.shape[-1], energy.shape[-1])
    pitch, energy = pitch[..., :frames], energy[..., :frames]
    voiced = (energy >= energy.max(axis=-1, keepdims=True) - PITCH_GATE_DB) & np.isfinite(pitch)
    pitch = np.where(voiced, pitch, np.nan)

    def stats(values: np.ndarray) -> list[np.ndarray]:
        with warnings.catch_warnings():  # a block without one voiced frame: NaN, zeroed below
            warnings.simplefilter("ignore", RuntimeWarning)
            p10, p90 = np.nanpercentile(values, [10, 90], axis=-1)
            return [np.nanmean(values, -1), np.nanstd(values, -1), p90 - p10]

    out = np.stack(stats(pitch) + stats(energy), axis=-1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def block_features(blocks: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_fft: int = 512,
                   hop_length: int = 160, n_mels: int = 40, prosody: bool = False) -> np.ndarray:
    """The baseline's feature vector of each block: (B, T) float waveforms -> (B, D) float64.

    Peak-normalises each block, then concatenates :func:`mfcc_statistics` (``3 * n_mfcc``
    values) and, with ``prosody``, :func:`prosody_statistics` (6 more). ``sample_rate`` in Hz
    is the corpus rate the blocks were decoded at; ``n_fft``/``hop_length`` in samples.
    """
    x = np.asarray(blocks)
    if x.ndim != 2:
        raise ValueError(f"blocks must be (B, T) waveforms; got shape {x.shape}")
    x = peak_normalise(x)
    parts = [mfcc_statistics(x, sample_rate, n_mfcc, n_fft, hop_length, n_mels)]
    if prosody:
        parts.append(prosody_statistics(x, sample_rate, hop_length))
    return np.concatenate(parts, axis=-1)


def feature_names(n_mfcc: int = 20, prosody: bool = False) -> list[str]:
    """Names of :func:`block_features`'s columns, in order."""
    names = [f"{stat}{k}" for stat in ("mfcc_mean", "mfcc_std", "delta_std") for k in range(n_mfcc)]
    if prosody:
        names += [f"{what}_{stat}" for what in ("pitch_st", "energy_db")
                  for stat in ("mean", "std", "range")]
    return names
