"""Decoding any audio file to mono float32 at the project's sample rate.

soundfile (libsndfile) reads wav/flac/ogg and, with libsndfile >= 1.1, mp3; librosa's
audioread fallback covers what libsndfile cannot. Resampling uses librosa's soxr backend,
which is fast and band-limited, so a 44.1 kHz corpus and a 16 kHz one give the same spectra.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ser.errors import AudioDecodeError, SerError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif")


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read ``path`` as a 1-D float32 array at ``sample_rate`` Hz, channels averaged.

    Raises :class:`SerError` when the file is missing and :class:`AudioDecodeError` when it
    exists but no decoder can read it, so corpus readers can skip and count bad files.
    """
    path = Path(path)
    if not path.is_file():
        raise SerError(f"Audio file not found: {path}. Check the path (relative paths in a "
                       "manifest are resolved against the manifest's own folder).")
    try:
        import soundfile as sf

        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.mean(axis=1)
    except Exception:  # libsndfile cannot read it: try librosa's audioread fallback
        try:
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, rate = librosa.load(str(path), sr=None, mono=True)
        except Exception as exc:
            raise AudioDecodeError(
                f"Cannot decode audio file {path}: {type(exc).__name__}: {exc}. Expected a "
                "readable wav/flac/ogg/mp3 file; re-encode it (e.g. `ffmpeg -i IN OUT.wav`) "
                "or remove it from the corpus."
            ) from exc
    if audio.size == 0:
        raise AudioDecodeError(f"Audio file {path} holds no samples; remove it from the corpus.")
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:  # a float file with NaN/inf would poison every block (and noise mix) it touches
        raise AudioDecodeError(f"Audio file {path} holds {bad} non-finite samples (NaN or "
                               f"infinity) out of {audio.size}; expected finite sample values. "
                               "Re-encode it as PCM or remove it from the corpus.")
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """(T,) float32 at ``rate`` Hz -> (ceil(T · sample_rate / rate),) at ``sample_rate`` Hz.

    soxr's high-quality filter, trimmed or zero-padded to that length: the same samples as
    ``librosa.resample(res_type="soxr_hq")``, without importing librosa and scipy.signal (part of
    the start-up of ``ser.predict`` and the server; docs/speed.md).
    """
    import soxr

    out = soxr.resample(np.asarray(audio, dtype=np.float32), int(rate), int(sample_rate), quality="HQ")
    n = int(np.ceil(audio.shape[-1] * float(sample_rate) / rate))
    if out.shape[0] != n:
        out = out[:n] if out.shape[0] > n else np.pad(out, (0, n - out.shape[0]))
    return np.asarray(out, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header, without decoding (NaN when unknown)."""
    try:
        import soundfile as sf

        return float(sf.info(str(path)).duration)
    except Exception:
        return float("nan")


def describe_source(path: str | Path) -> str:
    """The file's own rate and channels from its header (``44100 Hz, 2 channels``), or
    ``compressed audio`` where libsndfile cannot read the header."""
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return f"{info.samplerate} Hz, {info.channels} channel{'s' if info.channels > 1 else ''}"
    except Exception:
        return "compressed audio"


def list_audio_files(root: str | Path) -> list[Path]:
    """Every audio file under ``root`` (recursively), sorted so runs see the same order."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
