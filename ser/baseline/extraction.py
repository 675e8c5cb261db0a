"""Mixed blocks -> baseline features, in fixed chunks, each chunk cached on disk by its audio.

The expensive part of a conventional baseline is the feature extraction (openSMILE's ComParE
on a large corpus's noisy copies takes hours on one core), and much of it
repeats: the fixed noisy test sets are the same in a clean-trained and an augmented sweep,
the same seed draws the same training noise, a re-run repeats everything. So each chunk of
``FEATURE_CHUNK`` mixed blocks is looked up under ``<cache_dir>/baseline-features/<label>/`` by
a digest of its exact float32 samples, its shape and the extractor's ``feature_key`` (feature
set, sample rate, library and preprocessing versions): identical audio is extracted once,
anything else (another noise draw, SNR, seed or setting) gets its own file. Files are written
atomically with a size and checksum record (:mod:`ser.cache_files`); a damaged one is rebuilt
with one warning. Chunks are cut at fixed positions of the loader's order, independent of
``data.batch_size``, so a run with another batch size finds the same chunks.

Disk use is ``4 * D`` bytes per block copy for float32 features: 25 kB for ComParE (6.5 MB a
chunk), 0.35 kB for eGeMAPS. Delete the folder to reclaim it; nothing else refers to it.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ser.audio.mixing import mix_at_snr
from ser.cache_files import cached
from ser.errors import SerError

FEATURE_CHUNK = 256               # mixed blocks per extraction call and cache file (16 MB of audio at 16 kHz)
FEATURES_DIR = "baseline-features"
ITEM_COLUMNS = ("label", "utterance", "block", "offset", "snr")


class FeatureCache:
    """``cache(blocks, extract)``: (B, T) float32 blocks -> (B, D) features, from disk when the
    same samples were extracted before with the same ``key``. ``cache_dir=None``: no cache
    (every chunk is extracted; the counts still say so). Counts chunks, hits, extracted blocks
    and extraction seconds for run.json (:meth:`summary`)."""

    def __init__(self, cache_dir: str | Path | None, label: str, key: str):
        self.root = Path(cache_dir) / FEATURES_DIR / label if cache_dir else None
        self.key = key
        self.chunks = self.hits = self.blocks_extracted = 0
        self.extract_seconds = 0.0

    def path(self, blocks: np.ndarray) -> Path | None:
        """Where the features of these exact (B, T) float32 ``blocks`` are kept."""
        if self.root is None:
            return None
        digest = hashlib.sha256(self.key.encode("utf-8"))
        digest.update(np.asarray(blocks.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(blocks, dtype=np.float32).tobytes())
        name = digest.hexdigest()
        return self.root / name[:2] / f"{name[:40]}.npy"

    def __call__(self, blocks: np.ndarray, extract: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        blocks = np.ascontiguousarray(blocks, dtype=np.float32)
        built = []

        def build() -> np.ndarray:
            started = time.perf_counter()
            out = np.ascontiguousarray(extract(blocks))
            self.extract_seconds += time.perf_counter() - started
            built.append(len(blocks))
            return out

        def load(path: Path) -> np.ndarray | None:  # None (rebuilt) if it is not this chunk's
            out = np.load(path, allow_pickle=False)
            return out if out.ndim == 2 and len(out) == len(blocks) else None

        features = cached(self.path(blocks), load, build,
                          lambda f, value: np.save(f, value, allow_pickle=False))
        self.chunks += 1
        self.hits += not built
        self.blocks_extracted += sum(built)
        return features

    def summary(self) -> dict:
        """What run.json records: the folder, chunks looked up, cache hits, blocks extracted."""
        return {"dir": None if self.root is None else str(self.root), "key": self.key,
                "chunks": self.chunks, "hits": self.hits,
                "blocks_extracted": self.blocks_extracted,
                "extract_seconds": round(self.extract_seconds, 2)}


def feature_cache(model, cache_dir: str | Path | None) -> FeatureCache:
    """The cache of ``model``'s features (its ``cache_label`` folder, its ``feature_key``)."""
    return FeatureCache(cache_dir, model.cache_label, model.feature_key)


def mixed_features(model, batches: Iterable[dict], cache: FeatureCache | None = None,
                   chunk: int = FEATURE_CHUNK, where: str = "a data loader") -> dict[str, np.ndarray]:
    """Mix each batch at its SNRs (as the network's ``render`` does) and extract its features.

    Mixed blocks are cut into chunks of exactly ``chunk`` (the last one shorter) in the loader's
    order before extraction, so neither the cost nor the cache files depend on
    ``data.batch_size`` (features are per block: chunking never changes them). Returns
    ``features`` (N, D) float64 and the items' ``label``, ``utterance``, ``block`` (global
    block index), ``offset`` (samples a window starts after its block) and ``snr`` (N,) columns, in the loader's order. ``where`` names the part for
    error messages ("the training part of fold 0").
    """
    cache = cache or FeatureCache(None, "", "")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("features", *ITEM_COLUMNS)}
    pending: list[np.ndarray] = []

    def extract(final: bool) -> None:
        if not pending:
            return
        mixed = np.concatenate(pending)
        pending.clear()
        end = len(mixed) if final else len(mixed) - len(mixed) % chunk
        for start in range(0, end, chunk):
            try:
                columns["features"].append(cache(mixed[start:start + chunk], model.features))
            except SerError as exc:
                raise SerError(f"Extracting the features of {where}: {exc}") from None
        if end < len(mixed):
            pending.append(mixed[end:])

    for batch in batches:
        clean = batch["clean"]
        mixed = mix_at_snr(clean, batch["noise"], torch.as_tensor(batch["snr"]).to(clean.dtype))
        pending.append(mixed.numpy())
        if sum(len(p) for p in pending) >= chunk:
            extract(final=False)
        for key in ITEM_COLUMNS:  # offset: 0 for items of a dataset without windows
            value = batch[key] if key in batch else torch.zeros_like(torch.as_tensor(batch["block"]))
            columns[key].append(torch.as_tensor(value).numpy())
    extract(final=True)
    if not columns["features"]:
        raise SerError(f"The data loader of {where} yielded no blocks: the corpus or the fold is "
                       "empty. Check the corpus (dataset=...) and the split (split=..., fold=...).")
    out = {k: np.concatenate(v) for k, v in columns.items()}
    out["features"] = out["features"].astype(np.float64)
    return out
