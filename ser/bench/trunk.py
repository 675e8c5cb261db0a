"""Part (e) of ``python -m ser.bench``: an epoch with the frozen trunk computed, and one with it kept.

With clean training or noise fixed once (``snr=clean``, ``noise.fixed=true``) the first epoch
makes every image and runs the frozen layers, keeping their output in a
:class:`~ser.models.trunk_cache.TrunkCache`; every later epoch reads it back and runs only the
fine-tuned stages. Timed here on the same blocks, in steps of one batch, as training does it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ser.bench.common import sync_of
from ser.bench.training import build_net


def trunk_cache_epochs(blocks: np.ndarray, device: torch.device, batch: int, steps: int,
                       model: str) -> tuple[float, float, str]:
    """(seconds of the first epoch, seconds of a later one, where the cache lives) for an epoch of
    ``steps`` batches of clean blocks."""
    from ser.features.spectrogram import SpectrogramImage
    from ser.models.trunk_cache import TrunkCache

    n = batch * steps
    clean = torch.from_numpy(np.resize(blocks, (n, blocks.shape[1])))
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 4, n))
    net, optimiser = build_net(model, device)
    pipeline = SpectrogramImage(channels_last=True).to(device)
    cache = TrunkCache(n, max_ram_gb=8.0, name="bench")
    sync = sync_of(device)

    def epoch() -> float:
        sync()
        start = time.perf_counter()
        for first in range(0, n, batch):
            items = torch.arange(first, first + batch)
            if cache.holds(items):
                features = cache.lookup(items, device)
            else:
                with torch.no_grad():
                    images = pipeline(clean[first:first + batch].to(device))
                features = net.trunk(images)
                cache.store(items, features)
            loss = torch.nn.functional.cross_entropy(net.tail(features), labels[items].to(device))
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - start

    with torch.no_grad():  # warm-up outside the timing: first calls load kernels
        net.trunk(pipeline(clean[:batch].to(device)))
    first_s = epoch()
    later_s = epoch()
    where = cache.where
    cache.close()
    return first_s, later_s, where
