"""Speech in every block of a corpus, and the blocks ``data.min_speech`` leaves out.

Acted corpora carry up to a second of silence per file, so a share of the 1-s blocks holds no
one speaking, yet is labelled with its utterance's emotion. A detector (``vad=``) marks which
samples are speech; each utterance is analysed whole (its blocks are stored together, in time
order, from 0 s), so a block at a word's start is judged with the context before it, as a live
stream is. The per-sample marks are kept packed (one bit per sample, 2 kB per 1-s block at
16 kHz): ``noise.snr_reference=active`` measures the speech level over them. They are cached
beside the blocks (``speech-<corpus>-<key>.npz``, checked and rebuilt like the block cache).

The split plan is made on all blocks; the gate then removes the blocks with less speech than
``min_speech`` from each part, so gated and ungated runs of one fold test the same utterances
and a gated test set is a subset of the ungated one (block numbers unchanged).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio.speech_activity import speech_mask
from ser.cache_files import cached
from ser.data.blocks import BlockTable
from ser.errors import SerError

_CACHE_VERSION = 1


@dataclass
class BlockSpeech:
    """Speech of every block: ``fraction`` (N,) float32 share of speech samples (0-1) and
    ``packed`` (N, ceil(T / 8)) uint8, one bit per sample (``np.packbits`` order)."""

    fraction: np.ndarray
    packed: np.ndarray
    block_samples: int

    def mask(self, block: int) -> np.ndarray:
        """(T,) bool: which samples of ``block`` are speech."""
        return np.unpackbits(self.packed[block], count=self.block_samples).astype(bool)


def speech_cache_key(blocks: BlockTable, settings: dict) -> str:
    """A digest of the blocks (table, shapes, owners) and of the detector's settings."""
    digest = hashlib.sha1(f"{_CACHE_VERSION}|{blocks.table.fingerprint()}|{blocks.audio.shape}|"
                          f"{json.dumps(settings, sort_keys=True, default=str)}".encode())
    digest.update(np.ascontiguousarray(blocks.utterance, np.int64).tobytes())
    return digest.hexdigest()[:16]


def block_speech(blocks: BlockTable, detector, settings: dict, cache_dir: str | Path | None = None,
                 progress: bool = True, workers: int | None = None) -> BlockSpeech:
    """The speech of every block of ``blocks`` by ``detector`` (``settings``: its config, part
    of the cache key), cached in ``cache_dir`` when given."""
    cache_file = None
    if cache_dir is not None:
        name = f"speech-{blocks.table.name}-{speech_cache_key(blocks, settings)}.npz"
        cache_file = Path(cache_dir) / name
    return cached(cache_file, lambda path: _load(path, blocks),
                  lambda: _analyse(blocks, detector, progress, workers), _save)


def _analyse(blocks: BlockTable, detector, progress: bool, workers: int | None) -> BlockSpeech:
    """Run the detector over each utterance's blocks joined end to end."""
    n, length = blocks.audio.shape
    _, starts = np.unique(blocks.utterance, return_index=True)
    starts = np.sort(starts)
    spans = list(zip(starts, np.append(starts[1:], n)))
    fraction = np.zeros(n, np.float32)
    packed = np.zeros((n, -(-length // 8)), np.uint8)

    def analyse(span: tuple[int, int]) -> None:
        lo, hi = span
        audio = blocks.audio[lo:hi].reshape(-1).astype(np.float32) / np.float32(32768.0)
        mask = speech_mask(detector, audio).reshape(hi - lo, length)
        fraction[lo:hi] = mask.mean(axis=1)
        packed[lo:hi] = np.packbits(mask, axis=1)

    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(analyse, spans)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(spans), unit="file",
                           desc=f"Finding speech in {blocks.table.name} ({detector.name})")
        for _ in results:
            pass
    return BlockSpeech(fraction, packed, length)


def _save(handle, speech: BlockSpeech) -> None:
    np.savez(handle, fraction=speech.fraction, packed=speech.packed,
             block_samples=np.int64(speech.block_samples))


def _load(path: Path, blocks: BlockTable) -> BlockSpeech | None:
    with np.load(path, allow_pickle=False) as data:
        if data["fraction"].shape != (len(blocks),):
            return None
        return BlockSpeech(data["fraction"], data["packed"], int(data["block_samples"]))


def speech_selection(fraction: np.ndarray, utterance: np.ndarray, min_speech: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(keep (N,) bool, rescued utterance indices): blocks with at least ``min_speech`` speech;
    an utterance with none such keeps its most speech-filled block (the first of equals), so no
    utterance vanishes from its fold."""
    if not 0.0 <= float(min_speech) <= 1.0:
        raise SerError(f"data.min_speech={min_speech}: give the share of a block that must be "
                       "speech, between 0 and 1 (e.g. 0.5), or null for no gate.")
    keep = np.asarray(fraction) >= float(min_speech)
    owners = np.unique(utterance)
    kept_any = np.zeros(int(utterance.max()) + 1 if len(utterance) else 0, bool)
    kept_any[utterance[keep]] = True
    rescued = owners[~kept_any[owners]]
    for u in rescued:
        idx = np.flatnonzero(utterance == u)
        keep[idx[int(np.argmax(fraction[idx]))]] = True
    return keep, rescued


@dataclass
class BlockGate:
    """What ``data.min_speech`` did to one corpus: ``keep`` (N,) bool and the utterances whose
    best block was kept although below the threshold."""

    blocks: BlockTable
    speech: BlockSpeech
    min_speech: float
    detector: str

    def __post_init__(self):
        self.keep, self.rescued = speech_selection(self.speech.fraction, self.blocks.utterance,
                                                   self.min_speech)

    def gated(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` without the left-out blocks (order kept)."""
        idx = np.asarray(idx, np.int64)
        return idx[self.keep[idx]]

    def dropped_per_class(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(C,) blocks left out per class, among ``idx`` (all blocks if None)."""
        idx = np.arange(len(self.blocks)) if idx is None else np.asarray(idx, np.int64)
        out = idx[~self.keep[idx]]
        return np.bincount(self.blocks.labels[out], minlength=len(self.blocks.classes))

    def describe(self) -> str:
        n_out = int((~self.keep).sum())
        text = (f"Speech gate ({self.detector}, data.min_speech={self.min_speech:g}): "
                f"{n_out:,} of {len(self.blocks):,} blocks have less speech and are left out of "
                f"training, validation and test")
        if len(self.rescued):
            text += (f"; {len(self.rescued)} utterance(s) had no such block and keep their most "
                     "speech-filled one")
        return text + "."

    def record(self) -> dict:
        """run.json's ``speech_gate``: settings, blocks left out per class and per utterance."""
        per_utt = np.bincount(self.blocks.utterance[~self.keep],
                              minlength=len(self.blocks.table.utterances))
        utts = self.blocks.table.utterances
        return {"vad": self.detector, "min_speech": self.min_speech,
                "blocks": len(self.blocks), "left_out": int((~self.keep).sum()),
                "left_out_per_class": {c: int(v) for c, v in
                                       zip(self.blocks.classes, self.dropped_per_class())},
                "left_out_per_utterance": {utts[u].id: int(v) for u, v in enumerate(per_utt) if v},
                "kept_best_block": [utts[int(u)].id for u in self.rescued]}
