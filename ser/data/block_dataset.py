"""Datasets that hand out raw 1-s blocks with a noise segment and a target SNR.

Workers only index arrays and draw noise; mixing and images happen batched on the training
device. Every noise draw comes from a generator seeded by (seed, stream, epoch, key), so the
noise a block gets does not depend on the number of workers, the batch order or a resume.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ser.audio.noise import NoiseBank
from ser.audio.speech_activity import active_level_offset_db
from ser.errors import SerError

CLEAN = math.inf  # SNR of a copy that gets no noise


class BlockNoiseDataset(Dataset):
    """Item ``epoch * len(self) + i`` -> dict(clean (T,), noise (T,), snr, label, utterance, block, offset, item=i).

    Item ``i`` is block ``blocks[i % n]`` at SNR ``snrs[i // n]``: the clean set and each noisy
    copy in turn. The epoch travels inside the index (see :class:`EpochSampler`) so persistent
    workers draw fresh noise each epoch without shared state. With ``fixed`` the draw ignores the
    epoch (the paper's noise, fixed once); with ``same_noise_across_snrs`` a block gets one
    segment for every SNR, so test sets at 15/20/40 dB differ only in level.
    With ``speech`` (a :class:`~ser.data.speech_blocks.BlockSpeech`; ``noise.snr_reference=
    active``) a noisy item's ``snr`` is the block SNR that puts the noise at the target SNR
    against the window's active speech: the target minus
    :func:`~ser.audio.speech_activity.active_level_offset_db` (about 3 dB for a half-silent
    block), so pauses do not make the noise quieter.

    With ``window_hop`` (a fraction of a block, e.g. 0.5; test sets) the set also holds windows
    that start every ``window_hop`` of a block between two consecutive blocks of an utterance
    (both in ``blocks``), after all grid blocks: an utterance of n blocks then gives
    n + (n - 1)(1/hop - 1) views for its vote, while the grid items, their noise and their order
    stay exactly those of the set without windows. An item's ``offset`` is the samples its
    window starts after its block's start (0 for a grid block).
    """

    def __init__(self, audio: np.ndarray, labels: np.ndarray, utterance: np.ndarray,
                 blocks: np.ndarray, snrs: Sequence[float], bank: NoiseBank, seed: int,
                 stream: int, fixed: bool, same_noise_across_snrs: bool = False,
                 speech=None, window_hop: float | None = None):
        self.audio, self.labels, self.utterance = audio, labels, utterance
        self.blocks = np.asarray(blocks, dtype=np.int64)
        self.snrs = [float(s) for s in snrs]
        self.bank, self.seed, self.stream = bank, seed, stream
        self.fixed, self.same_noise = fixed, same_noise_across_snrs
        self.following = following_blocks(utterance) if window_hop is not None else None
        self.speech = speech
        # the items of one copy: (block, samples its window starts after the block's start)
        self.units, self.shifts = self.blocks, np.zeros(len(self.blocks), dtype=np.int64)
        if window_hop is not None:
            units, shifts = window_units(self.blocks, self.following, audio.shape[1], window_hop)
            self.units = np.concatenate([self.blocks, units])
            self.shifts = np.concatenate([self.shifts, shifts])

    def __len__(self) -> int:
        return len(self.units) * len(self.snrs)

    @property
    def item_labels(self) -> np.ndarray:
        return np.tile(self.labels[self.units], len(self.snrs))

    def __getitem__(self, key: int) -> dict[str, torch.Tensor | float | int]:
        epoch, i = divmod(int(key), len(self))
        copy, j = divmod(i, len(self.units))
        block, window = int(self.units[j]), int(self.shifts[j])
        snr = self.snrs[copy]
        length = self.audio.shape[1]
        if snr == CLEAN:
            noise = np.zeros(length, dtype=np.float32)
        else:
            # a grid block's draw is keyed as it always was; a window's adds its offset
            rng = np.random.default_rng([self.seed, self.stream, 0 if self.fixed else epoch, block,
                                         0 if self.same_noise else copy, *([window] if window else [])])
            noise = self.bank.segment(rng, length)
        clean = self._join(self.audio, block, window)
        if self.speech is not None and snr != CLEAN:
            mask = self._join(self.speech, block, window)
            snr = snr - active_level_offset_db(clean.astype(np.float32) / 32768.0, mask)
        return {
            "clean": torch.from_numpy(clean.astype(np.float32) / 32768.0),
            "noise": torch.from_numpy(np.ascontiguousarray(noise, dtype=np.float32)),
            "snr": snr,
            "label": int(self.labels[block]),
            "utterance": int(self.utterance[block]),
            "block": block,
            "offset": window,
            "item": i,  # the item within an epoch: what a trunk cache is keyed by
        }


    def _join(self, source, block: int, shift: int) -> np.ndarray:
        """The window of ``block`` shifted by ``shift`` samples into the next block, from the
        audio (``self.audio``) or the speech marks (a BlockSpeech: one bool per sample)."""
        take = source.mask if hasattr(source, "mask") else source.__getitem__
        if shift == 0:
            return take(block)
        return np.concatenate([take(block)[shift:], take(int(self.following[block]))[:shift]])


def following_blocks(utterance: np.ndarray) -> np.ndarray:
    """(N,) index of the block that continues each block in time in the same utterance, -1 for
    an utterance's last block (blocks of an utterance are stored together, in time order)."""
    utterance = np.asarray(utterance)
    nxt = np.arange(1, len(utterance) + 1, dtype=np.int64)
    nxt[-1:] = -1
    same = np.append(utterance[1:] == utterance[:-1], False)
    return np.where(same, nxt, -1)


def window_units(blocks: np.ndarray, following: np.ndarray, block_samples: int,
                 hop: float) -> tuple[np.ndarray, np.ndarray]:
    """The overlapping windows between consecutive blocks of ``blocks``: (block, shift) pairs
    (two (W,) int64 arrays), each window starting ``shift`` samples into ``block`` and running
    into the block that follows it, at shifts ``hop``, ``2 hop`` ... (< 1) of a block, for each
    block whose follower is in ``blocks`` too. ``hop`` must lie in (0, 1)."""
    if not 0.0 < float(hop) < 1.0:
        raise SerError(f"data.test_hop={hop}: give the step between test windows as a fraction of "
                       "a block between 0 and 1 (e.g. 0.5 adds a window halfway between each two "
                       "consecutive blocks of an utterance), or null for the blocks alone.")
    step = int(round(float(hop) * block_samples))
    offsets = np.arange(step, block_samples, step, dtype=np.int64) if step > 0 else np.empty(0, np.int64)
    held = np.zeros(len(following), dtype=bool)
    held[blocks] = True
    starts = np.asarray([b for b in blocks if following[b] >= 0 and held[following[b]]], dtype=np.int64)
    return np.repeat(starts, len(offsets)), np.tile(offsets, len(starts))


class EpochSampler(Sampler[int]):
    """Yields ``epoch * n + i``; Lightning calls :meth:`set_epoch` before each epoch (resume too).

    ``weights`` (one per item) switches to drawing with replacement, for balanced sampling.

    Under DDP the sampler shards itself (Lightning's own wrapper would hide :meth:`set_epoch`
    and freeze the noise): every process draws the same order for the epoch, pads it to a
    multiple of the number of processes by repeating its first items (as ``DistributedSampler``
    does, so every process runs the same number of steps) and keeps every ``world``-th item
    from its rank on. ``num_replicas``/``rank`` default to the initialised process group, read
    when iterating; one process (no group) sees the whole order, unpadded.
    """

    def __init__(self, n: int, seed: int, shuffle: bool, weights: np.ndarray | None = None,
                 num_replicas: int | None = None, rank: int | None = None):
        self.n, self.seed, self.shuffle, self.weights = n, seed, shuffle, weights
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def replicas(self) -> tuple[int, int]:
        """(world size, rank): the injected ones, else the process group's, else (1, 0)."""
        if self.num_replicas is not None:
            return int(self.num_replicas), int(self.rank or 0)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def __len__(self) -> int:
        world, _ = self.replicas()
        return math.ceil(self.n / world)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, 104729, self.epoch])
        if self.weights is not None:
            p = self.weights / self.weights.sum()
            order = rng.choice(self.n, size=self.n, replace=True, p=p)
        elif self.shuffle:
            order = rng.permutation(self.n)
        else:
            order = np.arange(self.n)
        world, rank = self.replicas()
        if world > 1:  # np.resize repeats from the start, also when n < world
            order = np.resize(order, math.ceil(self.n / world) * world)[rank::world]
        base = self.epoch * self.n
        return iter((base + order).tolist())


def balanced_weights(item_labels: np.ndarray) -> np.ndarray:
    """Per-item weights that make every class equally likely to be drawn."""
    counts = np.bincount(item_labels)
    return 1.0 / counts[item_labels]
