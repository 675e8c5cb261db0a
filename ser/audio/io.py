"""Decoding any audio file to mono float32 at the project's sample rate.

soundfile (libsndfile) reads wav/flac/ogg and, with libsndfile >= 1.1, mp3; librosa's
audioread fallback covers what libsndfile cannot (MP4/M4A, unusual MP3s). Resampling uses
soxr, which is fast and band-limited, so a 44.1 kHz corpus and a 16 kHz one give the same
spectra. A header is checked before its audio is decoded (a sample rate within
:data:`MIN_RATE`-:data:`MAX_RATE`, no more samples than the file's size can hold, at most
``max_seconds`` when the caller sets one), and the audio is decoded a chunk at a time, so
neither a forged header nor an hour of compressed silence makes a reader allocate more than
the audio it is allowed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ser.errors import AudioDecodeError, SerError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif")
MIN_RATE, MAX_RATE = 8_000, 192_000   # Hz a recording's header may give: telephone to studio
CHUNK_FRAMES = 1 << 16                # frames decoded at a time: memory follows the audio, not its header
# Containers libsndfile reads: when it cannot, no other decoder is tried (nothing else would
# read them, and loading it costs a second or two and ~180 MB)
SNDFILE_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"caff", b".snd")
# Frames x channels a compressed header may claim per byte of file: FLAC's densest frames (a
# constant 65,535-sample block in a dozen bytes) stay far below it, so more is a forged header
MAX_SAMPLES_PER_BYTE = 50_000
MAX_ABS = 1000.0   # a float sample beyond it (60 dB over full scale) is garbage, like NaN: refused
COMPRESSED = ("FLAC", "OGG", "MP3", "MPEG")   # libsndfile formats whose samples are not stored as such
PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
             "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


class AudioTooLong(AudioDecodeError):
    """A recording longer than the ``max_seconds`` its reader allows, by its header or by the
    samples decoded (a server answers 413)."""


def load_audio(path: str | Path, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Read ``path`` as a 1-D float32 array at ``sample_rate`` Hz, channels averaged.

    Raises :class:`SerError` when the file is missing and :class:`AudioDecodeError` when it
    exists but no decoder can read it (or its header is impossible: a sample rate outside
    :data:`MIN_RATE`-:data:`MAX_RATE`, more samples than its size can hold), so corpus readers
    can skip and count bad files; :class:`AudioTooLong` past ``max_seconds`` (None: no limit).
    """
    return decode_audio(path, sample_rate, max_seconds)[0]


def decode_audio(source, sample_rate: int, max_seconds: float | None = None, name: str | None = None,
                 fallback: bool = True) -> tuple[np.ndarray, str]:
    """``(audio, description)``: what :func:`load_audio` gives, and the source's own rate and
    channels as :func:`describe_source` words them, from one decoding.

    ``source`` is a path or a binary file object (an upload), named ``name`` in messages. The
    header is checked before any sample is decoded, then the audio is decoded and resampled
    :data:`CHUNK_FRAMES` at a time, never past ``max_seconds``: memory follows the audio a file
    holds, whatever its header claims. ``fallback=False`` refuses what libsndfile cannot read
    instead of trying librosa's audioread (MP4/M4A, unusual MP3s).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise SerError(f"Audio file not found: {path}. Check the path (relative paths in a "
                           "manifest are resolved against the manifest's own folder).")
        with open(path, "rb") as f:
            return _decode(f, name or str(path), sample_rate, max_seconds, fallback, path)
    return _decode(source, name or "the recording", sample_rate, max_seconds, fallback, None)


def _cannot(label: str, reason: str) -> AudioDecodeError:
    return AudioDecodeError(f"Cannot decode audio file {label}: {reason}. Expected a readable "
                            "wav/flac/ogg/mp3 recording; re-encode it (e.g. `ffmpeg -i IN OUT.wav`).")


def _check_rate(label: str, rate) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioDecodeError(f"Audio file {label} gives a sample rate of {rate} Hz in its header; "
                               f"ser reads {MIN_RATE}-{MAX_RATE} Hz. Re-encode it at a real rate "
                               "(e.g. `ffmpeg -i IN -ar 16000 OUT.wav`).")


def _too_long(label: str, max_seconds: float, header_s: float | None = None) -> AudioTooLong:
    told = f" {header_s:.0f} s by its header," if header_s is not None else ""
    return AudioTooLong(f"Audio file {label} lasts{told} more than the {max_seconds:g} s allowed "
                        f"(max_seconds=). Send a shorter recording, or cut it (e.g. `ffmpeg -i IN "
                        f"-t {max_seconds:g} OUT.wav`).")


def wav_header_rate(head: bytes) -> int | None:
    """The sample rate a RIFF/WAVE header's ``fmt `` chunk gives (None: not a WAV, or no fmt
    chunk in ``head``): read here so that a rate libsndfile refuses to open (0 Hz, 4 GHz)
    gets a message that says so."""
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk == b"fmt ":
            return int.from_bytes(head[at + 12:at + 16], "little") if at + 16 <= len(head) else None
        at += 8 + size + (size & 1)
    return None


def _fallback_format(head: bytes) -> bool:
    """Whether ``head`` starts a format only the fallback decoder reads: MP3 (an ID3 tag or an
    MPEG frame sync), MP4/M4A, Matroska/WebM or ASF."""
    return (head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
            or head[4:8] == b"ftyp" or head[:4] == b"\x1aE\xdf\xa3" or head[:4] == b"0&\xb2u")


def _decode(f, label: str, sample_rate: int, max_seconds: float | None, fallback: bool,
            path: Path | None) -> tuple[np.ndarray, str]:
    import soundfile as sf

    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    if size == 0:
        raise AudioDecodeError(f"Audio file {label} is empty (0 bytes): send a recording.")
    head = f.read(4096)
    f.seek(0)
    claimed = wav_header_rate(head)
    if claimed is not None:
        _check_rate(label, claimed)
    try:
        sound = sf.SoundFile(f)
    except Exception as exc:
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        if head[:4] in SNDFILE_MAGIC or not fallback or not _fallback_format(head):
            what = ("" if head[:4] in SNDFILE_MAGIC or _fallback_format(head)
                    else "not a recording in a format ser reads; ")
            raise _cannot(label, f"{what}libsndfile says {reason.rstrip('.')}") from None
        f.seek(0)
        return _decode_fallback(f, label, sample_rate, max_seconds, path), "compressed audio"
    with sound:
        rate, channels, frames = int(sound.samplerate), int(sound.channels), int(sound.frames)
        _check_rate(label, rate)
        if max_seconds is not None and frames / rate > max_seconds:
            raise _too_long(label, max_seconds, frames / rate)
        width = None if sound.format in COMPRESSED else PCM_BYTES.get(sound.subtype)
        if (frames * channels * width > size) if width else (frames * channels > MAX_SAMPLES_PER_BYTE * size):
            raise AudioDecodeError(f"Audio file {label} claims {frames} frames of {channels} channel(s) "
                                   f"({frames / rate:.0f} s) in its header, more than its {size} bytes "
                                   "can hold: the header is damaged or forged. Re-encode the recording.")
        limit = None if max_seconds is None else int(np.ceil(max_seconds * rate))
        try:
            audio, total = _read_chunks(sound, label, rate, sample_rate, limit, max_seconds)
        except AudioDecodeError:
            raise
        except Exception as exc:  # a damaged stream inside a readable header
            reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
            raise _cannot(label, f"libsndfile says {reason.rstrip('.')}") from None
    description = f"{rate} Hz, {channels} channel{'s' if channels > 1 else ''}"
    return audio, description


def _read_chunks(sound, label: str, rate: int, sample_rate: int, limit: int | None,
                 max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Decode, average the channels and resample (soxr's stream: the same samples as
    :func:`resample` of the whole) a chunk at a time; ``(audio, frames decoded)``."""
    resampler = None
    if rate != sample_rate:
        import soxr

        resampler = soxr.ResampleStream(rate, int(sample_rate), 1, dtype="float32", quality="HQ")
    parts, total, bad = [], 0, 0
    while True:
        block = sound.read(CHUNK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            break
        total += len(block)
        if limit is not None and total > limit:
            raise _too_long(label, max_seconds)
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        bad += int(np.count_nonzero(~(np.abs(mono) <= MAX_ABS)))  # NaN and infinity included
        if not bad:  # once poisoned, only the count goes on
            parts.append(resampler.resample_chunk(mono) if resampler is not None else mono.copy())
    _check_samples(label, total, bad)
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    audio = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if resampler is not None:
        n = int(np.ceil(total * float(sample_rate) / rate))
        audio = audio[:n] if audio.shape[0] >= n else np.pad(audio, (0, n - audio.shape[0]))
    return np.ascontiguousarray(audio, dtype=np.float32), total


def _check_samples(label: str, total: int, bad: int) -> None:
    if total == 0:
        raise AudioDecodeError(f"Audio file {label} holds no samples: a header without audio.")
    if bad:  # a float file with NaN/inf would poison every block (and noise mix) it touches
        raise AudioDecodeError(f"Audio file {label} holds {bad} non-finite samples (NaN or "
                               f"infinity, or beyond ±{MAX_ABS:g}) out of {total}; expected finite "
                               "sample values. Re-encode it as PCM.")


def _decode_fallback(f, label: str, sample_rate: int, max_seconds: float | None,
                     path: Path | None) -> np.ndarray:
    """librosa's audioread (ffmpeg, GStreamer) for what libsndfile cannot read; it needs a path,
    so an upload is copied to a temporary file first."""
    import tempfile

    try:
        import librosa

        with tempfile.TemporaryDirectory(prefix="ser-decode-") as tmp:
            if path is None:
                path = Path(tmp) / "recording"
                with open(path, "wb") as out:
                    import shutil

                    shutil.copyfileobj(f, out)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, rate = librosa.load(str(path), sr=None, mono=True,
                                           duration=None if max_seconds is None else max_seconds + 1.0)
    except Exception as exc:
        raise _cannot(label, f"{type(exc).__name__}: {str(exc) or 'no decoder could read it'}") from None
    _check_rate(label, int(rate))
    if max_seconds is not None and audio.shape[0] / rate > max_seconds:
        raise _too_long(label, max_seconds)
    _check_samples(label, int(audio.size), int(np.count_nonzero(~(np.abs(audio) <= MAX_ABS))))
    if rate != sample_rate:
        audio = resample(audio, int(rate), sample_rate)
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
