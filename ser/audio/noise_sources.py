"""Noise sources a config names by ``_target_`` (conf/noise/<name>.yaml): each returns the
disjoint (train, test) :class:`~ser.audio.noise.NoiseBank` pair of one run.

Every source is called with the run's ``sample_rate`` (Hz), ``cache_dir`` (or None) and
``run_seed``, plus the keys of its YAML file; a new source is a function like these and a file
with its ``_target_``. ``fixed`` (whether training noise is drawn once), ``snr_reference``
(what the SNR is measured against: the whole block or its active speech),
``validation_fraction`` (the share of the training noise held out for the validation part) and
``per_fold`` (each fold draws its own split: the ``run_seed`` passed is then the fold's)
describe the run, not the source, and are not passed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ser.audio.noise import NoiseBank
from ser.errors import SerError

log = logging.getLogger(__name__)
Banks = tuple[NoiseBank, NoiseBank]
NOT_SOURCE_KEYS = ("fixed", "snr_reference", "validation_fraction", "per_fold")


def synthetic_room(sample_rate: int, cache_dir: str | Path | None, run_seed: int,
                   seconds: float = 120.0, seed: int = 0) -> Banks:
    """``noise=demo``: the built-in synthetic noisy room of ``seconds`` s (its own ``seed``)."""
    log.warning("Noise: the built-in synthetic noisy room (noise=demo). Real environmental "
                "recordings belong here: noise=dir noise.root=FOLDER.")
    return NoiseBank.demo(sample_rate, seconds=float(seconds), seed=int(seed), cache_dir=cache_dir)


def folder(sample_rate: int, cache_dir: str | Path | None, run_seed: int, root: str | None = None,
           test_root: str | None = None, test_fraction: float = 0.2) -> Banks:
    """``noise=dir``: recordings under ``root``, split by the run's seed (or ``test_root`` for test)."""
    if root in (None, "???"):
        raise SerError("noise=dir needs a folder of noise recordings: add noise.root=FOLDER "
                       "(wav/flac/ogg/mp3 files, any rate, mono or stereo).")
    return NoiseBank.from_folder(root, sample_rate, test_root=test_root,
                                 test_fraction=float(test_fraction), seed=int(run_seed),
                                 cache_dir=cache_dir)
