"""Utterances → non-overlapping fixed-length blocks, the unit every model sees.

Blocks are cut once, before any split, so that a split can be made at block level (the paper's
protocol) or at utterance/speaker level from the same array. They are stored as int16 (half the
memory of float32, the precision of the source wavs) and cached as ``.npz`` keyed by the
table's fingerprint and the block settings, so a second run starts in seconds; the cache is
checked (size, checksum) before it is read and rebuilt when damaged (:mod:`ser.cache_files`).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.audio.io import load_audio
from ser.cache_files import cached
from ser.data.utterances import UtteranceTable
from ser.errors import AudioDecodeError, SerError

_CACHE_VERSION = 1  # bump when the cutting rule changes, so old caches are ignored


@dataclass
class BlockTable:
    """All blocks of a corpus.

    audio: int16 (N, block_samples), waveform × 32767, clipped; labels: int64 (N,) class ids;
    utterance: int64 (N,) index into ``table.utterances``; skipped: ``(path, reason)`` for
    each file that gave no block (undecodable, missing or shorter than one block).
    """

    audio: np.ndarray
    labels: np.ndarray
    utterance: np.ndarray
    table: UtteranceTable
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def classes(self) -> list[str]:
        return self.table.classes

    @property
    def block_samples(self) -> int:
        return int(self.audio.shape[1])

    def as_float(self, idx: np.ndarray | slice | int | None = None) -> np.ndarray:
        """float32 (n, block_samples) in [-1, 1): ``audio[idx] / 32768`` (all blocks if None)."""
        selected = self.audio if idx is None else self.audio[idx]
        return selected.astype(np.float32) / np.float32(32768.0)

    def block_counts(self) -> dict[str, int]:
        """Blocks per class, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts)}


def build_blocks(table: UtteranceTable, sample_rate: int = 16000, block_seconds: float = 1.0,
                 pad_min_fraction: float | None = None, cache_dir: str | Path | None = None,
                 progress: bool = True, workers: int | None = None) -> BlockTable:
    """Cut every utterance of ``table`` into blocks of ``block_seconds`` at ``sample_rate`` Hz.

    A trailing remainder is dropped, or zero-padded into one more block when ``pad_min_fraction``
    is set and the remainder is at least that fraction of a block (this also lets files shorter
    than a block contribute one block). Files that cannot be decoded or are too short are
    skipped and listed in ``skipped``. With ``cache_dir`` the result is cached as
    ``blocks-<key>.npz``; ``workers`` threads decode in parallel (default: up to 4, one per core).
    Raises :class:`SerError` when no block remains or a class has none.
    """
    block_samples = int(round(block_seconds * sample_rate))
    if block_samples <= 0:
        raise SerError(f"block_seconds={block_seconds} at {sample_rate} Hz gives no samples; "
                       "set data.block_seconds to a positive number of seconds (e.g. 1.0).")
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha1(f"{_CACHE_VERSION}|{table.fingerprint()}|{sample_rate}|"
                           f"{block_samples}|{pad_min_fraction}".encode()).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"blocks-{table.name}-{key}.npz"
    return cached(cache_file, lambda path: _load_cache(path, table),
                  lambda: _cut_table(table, sample_rate, block_samples, pad_min_fraction, progress,
                                     workers), _save_cache)


def _cut_table(table: UtteranceTable, sample_rate: int, block_samples: int,
               pad_min_fraction: float | None, progress: bool, workers: int | None) -> BlockTable:
    """Every utterance of ``table`` cut into blocks (see :func:`build_blocks`)."""
    block_seconds = block_samples / sample_rate
    workers = workers or min(4, os.cpu_count() or 1)

    def cut(index: int) -> tuple[np.ndarray | None, str]:
        return _cut_utterance(table.utterances[index].path, sample_rate, block_samples,
                              pad_min_fraction)

    pieces, labels, owners, skipped = [], [], [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(cut, range(len(table.utterances)))
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(table.utterances), unit="file",
                           desc=f"Cutting {table.name} into {block_seconds:g} s blocks")
        for index, (blocks, reason) in enumerate(results):
            if blocks is None:
                skipped.append((table.utterances[index].path, reason))
                continue
            pieces.append(blocks)
            labels.append(np.full(len(blocks), table.class_index(table.utterances[index].label)))
            owners.append(np.full(len(blocks), index))
    if not pieces:
        raise SerError(f"Corpus {table.name} gave no {block_seconds:g} s block: all "
                       f"{len(table.utterances)} files were skipped (first: {skipped[:1]}). "
                       "Check the audio files, or lower data.block_seconds / set "
                       "data.pad_min_fraction to keep short files.")
    result = BlockTable(audio=np.concatenate(pieces),
                        labels=np.concatenate(labels).astype(np.int64),
                        utterance=np.concatenate(owners).astype(np.int64), table=table,
                        skipped=skipped)
    empty = [name for name, n in result.block_counts().items() if n == 0]
    if empty:
        raise SerError(f"Corpus {table.name} gave no {block_seconds:g} s block for the class(es) "
                       f"{empty} (utterances per class: {table.label_counts()}; "
                       f"{len(skipped)} files skipped). Add recordings of those classes, drop "
                       "them from the class list, or set data.pad_min_fraction to keep short "
                       "files.")
    return result


def cut_blocks(audio: np.ndarray, block_samples: int, pad_min_fraction: float | None = None
               ) -> np.ndarray:
    """(T,) waveform -> (n, block_samples) non-overlapping blocks, n possibly 0: the one cutting
    rule of training, evaluation of recordings and the benchmark. The remainder is dropped, or
    zero-padded into one more block when it is at least ``pad_min_fraction`` of a block."""
    whole, remainder = divmod(audio.shape[0], block_samples)
    if pad_min_fraction is not None and remainder and remainder >= pad_min_fraction * block_samples:
        audio = np.concatenate([audio, np.zeros(block_samples - remainder, audio.dtype)])
        whole += 1
    return audio[: whole * block_samples].reshape(whole, block_samples)


def _cut_utterance(path: str, sample_rate: int, block_samples: int,
                   pad_min_fraction: float | None) -> tuple[np.ndarray | None, str]:
    """int16 (n, block_samples) blocks of one file, or ``(None, reason)`` when it gives none."""
    try:
        audio = load_audio(path, sample_rate)
    except AudioDecodeError as exc:
        return None, f"cannot decode: {exc}"
    except SerError:
        return None, "file not found"
    blocks = cut_blocks(audio, block_samples, pad_min_fraction)
    if len(blocks) == 0:
        return None, (f"shorter than one block ({audio.shape[0] / sample_rate:.2f} s < "
                      f"{block_samples / sample_rate:.2f} s)")
    return np.clip(np.round(blocks * 32767.0), -32768, 32767).astype(np.int16), ""


def _save_cache(handle, blocks: BlockTable) -> None:
    skipped = np.array(blocks.skipped, dtype=str).reshape(-1, 2)
    np.savez(handle, audio=blocks.audio, labels=blocks.labels, utterance=blocks.utterance,
             skipped=skipped, n_utterances=np.int64(len(blocks.table)))


def _load_cache(cache_file: Path, table: UtteranceTable) -> BlockTable | None:
    """The cached blocks, or None when they were cut from another table."""
    with np.load(cache_file, allow_pickle=False) as data:
        if int(data["n_utterances"]) != len(table):
            return None
        skipped = [(str(p), str(r)) for p, r in data["skipped"]]
        return BlockTable(audio=data["audio"], labels=data["labels"],
                          utterance=data["utterance"], table=table, skipped=skipped)
