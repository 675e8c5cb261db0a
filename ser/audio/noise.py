"""Environmental-noise recordings, split so that test noise is never heard in training.

A :class:`NoiseBank` holds mono float32 recordings at the project sample rate and hands out
random segments of a block's length. ``from_folder`` splits a folder of real
recordings into disjoint train and test banks (by file, or by time range when there is only one
recording); ``demo`` synthesises a noisy room so that the default run needs no download.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ser.audio.io import AUDIO_SUFFIXES, list_audio_files, load_audio
from ser.audio.room_noise import synthetic_room
from ser.cache_files import cached
from ser.errors import AudioDecodeError, SerError

Span = tuple[str, int, int]  # (source recording, first sample, one past the last sample)
_CACHE_VERSION = "noisebank-v1"  # bump when the cached layout or the split rule changes


class NoiseBank:
    """A set of noise recordings (float32, mono, ``sample_rate`` Hz) to draw segments from.

    ``spans[i]`` says where recording ``i`` comes from, as sample ranges of a decoded source, so
    a train/test split can be checked for overlap. ``skipped`` lists ``(path, reason)`` of files
    that could not be decoded. ``split`` is how the bank was separated from its partner:
    ``"file"``, ``"time"``, ``"folders"`` or ``"none"``. Segments quieter than
    ``silence_power`` (mean power, full scale = 1) are redrawn up to ``max_redraws`` times.
    """

    def __init__(self, recordings: list[np.ndarray], names: list[str], sample_rate: int,
                 spans: list[Span] | None = None, skipped: list[tuple[str, str]] | None = None,
                 split: str = "none", silence_power: float = 1e-10, max_redraws: int = 100):
        if not recordings or any(np.asarray(r).size == 0 for r in recordings):
            raise SerError("A noise bank needs at least one non-empty recording; check the noise "
                           "folder (`noise.root=FOLDER` of wav/flac/ogg files).")
        if len(names) != len(recordings):
            raise SerError(f"Noise bank got {len(recordings)} recordings but {len(names)} names.")
        self.recordings = [np.ascontiguousarray(r, dtype=np.float32).ravel() for r in recordings]
        self.names = list(names)
        self.sample_rate = int(sample_rate)
        self.spans = list(spans or [(n, 0, len(r)) for n, r in zip(self.names, self.recordings)])
        self.skipped = list(skipped or [])
        self.split = split
        self.silence_power = float(silence_power)
        self.max_redraws = int(max_redraws)
        lengths = np.array([len(r) for r in self.recordings], dtype=np.float64)
        self._cumulative = np.cumsum(lengths / lengths.sum())  # duration-proportional choice

    # ------------------------------------------------------------------ drawing segments
    def segment(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """A random ``length``-sample float32 segment (length,) from a random recording.

        Recordings are chosen with probability proportional to their duration and the start is
        uniform, so every second of noise is equally likely. A recording shorter than
        ``length`` is tiled from a random offset; a silent segment is redrawn.
        """
        length = int(length)
        if length < 1:
            raise SerError(f"A noise segment needs a positive length in samples, got {length}.")
        for _ in range(self.max_redraws + 1):
            index = min(int(np.searchsorted(self._cumulative, rng.random(), side="right")),
                        len(self.recordings) - 1)
            recording = self.recordings[index]
            if len(recording) >= length:
                start = int(rng.integers(0, len(recording) - length + 1))
                piece = recording[start:start + length].copy()
            else:  # tile: wrap around from a random offset until the block is full
                start = int(rng.integers(0, len(recording)))
                piece = recording[(start + np.arange(length)) % len(recording)]
            if np.mean(np.square(piece, dtype=np.float64)) > self.silence_power:
                return piece
        raise SerError(
            f"The noise is silent: {self.max_redraws + 1} random {length}-sample segments of "
            f"{self.describe()} ({', '.join(self.names[:3])}{', ...' if len(self) > 3 else ''}) "
            f"all had mean power <= {self.silence_power:g}. Use recordings that hold audible "
            "noise (`noise.root=FOLDER` of wav/flac/ogg files).")

    def segments(self, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
        """``n`` independent segments as one float32 array (n, length)."""
        out = np.empty((int(n), int(length)), dtype=np.float32)
        for row in range(int(n)):
            out[row] = self.segment(rng, length)
        return out

    # ------------------------------------------------------------------ description
    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def durations(self) -> list[float]:
        """Duration of each recording in seconds."""
        return [len(r) / self.sample_rate for r in self.recordings]

    def digest(self) -> str:
        """12 hex digits naming which recordings (and time ranges) the bank holds: two runs whose
        test banks have the same digest mixed their test blocks with the same noise."""
        import hashlib

        return hashlib.sha1("\n".join(sorted(self.names)).encode()).hexdigest()[:12]

    @property
    def total_seconds(self) -> float:
        return float(sum(len(r) for r in self.recordings) / self.sample_rate)

    def describe(self, test: NoiseBank | None = None) -> str:
        """One line for the setup summary: ``"12 files, 241.3 s train / 3 files, 58.2 s test"``."""
        def one(bank: NoiseBank) -> str:
            unit = "recording" if bank.split in ("time", "none") else "file"
            return f"{len(bank)} {unit}{'s' if len(bank) != 1 else ''}, {bank.total_seconds:.1f} s"
        if test is None:
            return one(self)
        tail = " (split by time range)" if self.split == "time" else ""
        return f"{one(self)} train / {one(test)} test{tail}"

    def __repr__(self) -> str:
        return f"NoiseBank({self.describe()}, {self.sample_rate} Hz)"

    def hold_out(self, fraction: float, seed: int) -> tuple[NoiseBank, NoiseBank]:
        """(kept, held out): about ``fraction`` of the duration set aside as ``from_folder`` splits
        off the test part, for the validation part's copies: noise the network never trained on.
        The split's own seed stream, so it does not echo the test split's choice."""
        if not 0.0 < float(fraction) < 1.0:
            raise SerError(f"noise.validation_fraction must lie in [0, 1), got {fraction}: it is the "
                           "share of the training noise held out for the validation part (0: none).")
        return _split(type(self), list(zip(self.names, self.recordings)), self.skipped,
                      self.sample_rate, float(fraction), int(seed) + 7919)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_folder(cls, root: str | Path, sample_rate: int, test_root: str | Path | None = None,
                    test_fraction: float = 0.2, seed: int = 0,
                    cache_dir: str | Path | None = None) -> tuple[NoiseBank, NoiseBank]:
        """Decode every recording under ``root`` and split it into (train, test) banks.

        Several files are split by file: a ``seed``-ed shuffle, then files go to test while
        that brings the test share of the total duration closer to ``test_fraction`` (at least
        one file on each side). A single recording is split by time: its last
        ``test_fraction`` is the test part. With ``test_root``, all of ``root`` is train and all
        of ``test_root`` is test. Undecodable files are skipped and listed in ``.skipped``.
        Decoded banks are cached in ``cache_dir`` (keyed by paths, sizes, mtimes, rate, split).
        """
        _check_fraction(test_fraction)
        files = _noise_files(root, "noise.root")
        test_files = _noise_files(test_root, "noise.test_root") if test_root is not None else []
        cache = _cache_path(cache_dir, files + test_files, sample_rate, test_fraction, seed,
                            test_root is not None)

        def build() -> tuple[NoiseBank, NoiseBank]:
            if test_root is None:
                decoded, skipped = _decode(files, Path(root), sample_rate, "noise.root")
                return _split(cls, decoded, skipped, sample_rate, float(test_fraction), int(seed))
            train, train_skipped = _decode(files, Path(root), sample_rate, "noise.root")
            test, test_skipped = _decode(test_files, Path(test_root), sample_rate,
                                         "noise.test_root")
            return (cls(*_unzip(train), sample_rate, skipped=train_skipped, split="folders"),
                    cls(*_unzip(test), sample_rate, skipped=test_skipped, split="folders"))

        return cached(cache, lambda path: _load_banks(path, sample_rate), build, _save_banks)

    @classmethod
    def demo(cls, sample_rate: int, seconds: float = 60.0, seed: int = 0,
             test_fraction: float = 0.2, voices: int = 6,
             cache_dir: str | Path | None = None) -> tuple[NoiseBank, NoiseBank]:
        """A synthetic noisy room (babble of ``voices`` talkers, ventilation hum and rumble,
        room tone, clatter) of ``seconds`` s, the same for the same ``seed``; the last
        ``test_fraction`` of it is the test bank. It only stands in for real recordings.
        Synthesis takes seconds, so the banks are cached like decoded folders."""
        _check_fraction(test_fraction)
        cache = None
        if cache_dir is not None:
            key = f"{_CACHE_VERSION}|room|{sample_rate}|{seconds!r}|{seed}|{voices}|{test_fraction!r}"
            cache = Path(cache_dir).expanduser() / f"noise-room-{hashlib.sha1(key.encode()).hexdigest()[:20]}.npz"

        def build() -> tuple[NoiseBank, NoiseBank]:
            audio = synthetic_room(int(sample_rate), float(seconds), int(seed), int(voices))
            source = f"synthetic-room(seed={seed})"
            return _split(cls, [(source, audio)], [], sample_rate, float(test_fraction), int(seed))

        return cached(cache, lambda path: _load_banks(path, sample_rate), build, _save_banks)


# ---------------------------------------------------------------------- folder decoding
def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise SerError(f"noise.test_fraction must lie strictly between 0 and 1, got "
                       f"{test_fraction}: it is the share of the noise kept for the test sets.")


def _noise_files(root: str | Path, key: str) -> list[Path]:
    """Audio files under ``root`` (or ``root`` itself when it is one audio file)."""
    root = Path(root).expanduser()
    expected = (f"Set `{key}=FOLDER` to a folder of wav/flac/ogg files (searched recursively, "
                "any sample rate, mono or stereo)")
    if root.is_file() and root.suffix.lower() in AUDIO_SUFFIXES:
        return [root]
    if not root.is_dir():
        raise SerError(f"Noise folder {root} does not exist. {expected}, or use noise=demo for "
                       "the built-in synthetic room noise.")
    files = list_audio_files(root)
    if not files:
        raise SerError(f"Noise folder {root} holds no audio files ({', '.join(AUDIO_SUFFIXES)}). "
                       f"{expected}, or use noise=demo for the built-in synthetic room noise.")
    return files


def _decode(files: list[Path], root: Path, sample_rate: int, key: str
            ) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """Decode ``files``; returns ([(name relative to root, audio)], [(path, reason) skipped])."""
    decoded, skipped = [], []
    for path in files:
        try:
            audio = load_audio(path, sample_rate)
        except (AudioDecodeError, SerError) as exc:
            skipped.append((str(path), str(exc)))
            continue
        name = path.relative_to(root).as_posix() if root.is_dir() else path.name
        decoded.append((name, audio))
    if not decoded:
        raise SerError(f"None of the {len(files)} audio files in noise folder {root} could be "
                       f"decoded (first error: {skipped[0][1]}). Set `{key}=FOLDER` to a folder "
                       "of readable wav/flac/ogg files, or re-encode them as wav.")
    return decoded, skipped


def _unzip(decoded: list[tuple[str, np.ndarray]]) -> tuple[list[np.ndarray], list[str]]:
    return [audio for _, audio in decoded], [name for name, _ in decoded]


def _split(cls: type[NoiseBank], decoded: list[tuple[str, np.ndarray]],
           skipped: list[tuple[str, str]], sample_rate: int, test_fraction: float,
           seed: int) -> tuple[NoiseBank, NoiseBank]:
    """Disjoint (train, test): by file when there are several, else by time range."""
    if len(decoded) == 1:
        name, audio = decoded[0]
        cut = int(round(len(audio) * (1.0 - test_fraction)))
        if cut < 1 or cut >= len(audio):
            raise SerError(f"Noise recording {name} ({len(audio)} samples) is too short to split "
                           f"into train and test parts; use a longer recording or several files.")
        parts = []
        for start, stop in ((0, cut), (cut, len(audio))):
            label = f"{name}@{start / sample_rate:.1f}-{stop / sample_rate:.1f}s"
            parts.append(cls([audio[start:stop]], [label], sample_rate,
                             spans=[(name, start, stop)], skipped=skipped, split="time"))
        return parts[0], parts[1]
    order = np.random.default_rng(seed).permutation(len(decoded))
    lengths = np.array([len(audio) for _, audio in decoded], dtype=np.float64)
    target, taken, in_test = test_fraction * lengths.sum(), 0.0, []
    for index in order:  # greedy: a file joins test when it brings the share closer to target
        closer = abs(taken + lengths[index] - target) < abs(taken - target)
        if closer and len(in_test) < len(decoded) - 1:
            in_test.append(index)
            taken += lengths[index]
    if not in_test:
        in_test = [order[0]]
    chosen = set(int(i) for i in in_test)
    train = [decoded[i] for i in range(len(decoded)) if i not in chosen]
    test = [decoded[i] for i in sorted(chosen)]
    return (cls(*_unzip(train), sample_rate, skipped=skipped, split="file"),
            cls(*_unzip(test), sample_rate, skipped=skipped, split="file"))


# ---------------------------------------------------------------------- cache
def _cache_path(cache_dir: str | Path | None, files: list[Path], sample_rate: int,
                test_fraction: float, seed: int, by_folders: bool) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha1(f"{_CACHE_VERSION}|{sample_rate}|{test_fraction!r}|{seed}|{by_folders}"
                          .encode())
    for path in files:
        stat = path.stat()
        digest.update(f"|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return Path(cache_dir).expanduser() / f"noise-{digest.hexdigest()[:20]}.npz"


def _save_banks(handle, banks: tuple[NoiseBank, NoiseBank]) -> None:
    """Both banks in one .npz (written and checked by :func:`ser.cache_files.cached`)."""
    arrays: dict[str, np.ndarray] = {}
    for role, bank in zip(("train", "test"), banks):
        arrays[f"{role}_audio"] = np.concatenate(bank.recordings)
        arrays[f"{role}_lengths"] = np.array([len(r) for r in bank.recordings], dtype=np.int64)
        arrays[f"{role}_names"] = np.array(bank.names, dtype=str)
        arrays[f"{role}_sources"] = np.array([s for s, _, _ in bank.spans], dtype=str)
        arrays[f"{role}_ranges"] = np.array([(a, b) for _, a, b in bank.spans], dtype=np.int64)
        arrays[f"{role}_skipped"] = np.array(bank.skipped, dtype=str).reshape(-1, 2)
        arrays[f"{role}_split"] = np.array(bank.split)
    np.savez(handle, **arrays)


def _load_banks(path: Path, sample_rate: int) -> tuple[NoiseBank, NoiseBank]:
    with np.load(path, allow_pickle=False) as data:
        banks = []
        for role in ("train", "test"):
            bounds = np.cumsum(data[f"{role}_lengths"])[:-1]
            recordings = np.split(data[f"{role}_audio"], bounds)
            spans = [(str(s), int(a), int(b)) for s, (a, b) in
                     zip(data[f"{role}_sources"], data[f"{role}_ranges"])]
            skipped = [(str(p), str(r)) for p, r in data[f"{role}_skipped"]]
            banks.append(NoiseBank(recordings, [str(n) for n in data[f"{role}_names"]],
                                   sample_rate, spans=spans, skipped=skipped,
                                   split=str(data[f"{role}_split"])))
    return banks[0], banks[1]
