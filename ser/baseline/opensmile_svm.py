"""``OpenSmileSvm``: openSMILE functionals of each 1-s block -> StandardScaler -> SVM
(``model=opensmile_svm``), the field's standard conventional baseline.

``feature_set=egemaps`` is eGeMAPS v02 (88 functionals: pitch, jitter, shimmer, loudness,
formants, spectral balance, ...; Eyben et al. 2016), ``compare`` the ComParE 2016 set (6,373
functionals of 65 low-level descriptors; Schuller et al. 2016). Both are computed per block
(the unit every model classifies, so the SVM votes over an utterance's blocks exactly as a
network does) at the corpus sample rate, by one reused :class:`opensmile.Smile`
(:mod:`ser.baseline.smile`; its cost per block is in docs/speed.md). ``workers`` > 1 extracts in
that many processes; the feature cache (:mod:`ser.baseline.extraction`) makes each distinct
block copy cost this once.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Mapping

import numpy as np

from ser.baseline.estimator import SvmBaseline
from ser.baseline.smile import (FEATURE_SETS, FEATURE_VERSION, INT16_PEAK, extract_in_worker,
                                load_opensmile, make_smile, smile_functionals)
from ser.baseline.svm_grid import Grid
from ser.errors import SerError

__all__ = ["FEATURE_SETS", "OpenSmileSvm"]


class OpenSmileSvm(SvmBaseline):
    """An SVM on per-block openSMILE functionals (eGeMAPS or ComParE), chosen on validation.

    feature_set: ``egemaps`` (88 functionals) or ``compare`` (6,373). grids: the grid searched
    for each feature set (``{"egemaps": {"kernel": [...], "C": [...]}, "compare": {...}}``);
    only ``grids[feature_set]`` is used (see :mod:`ser.baseline.estimator` for how the choice is
    made and recorded). C, kernel, gamma, solver, class_weight, break_ties, max_iter: fixed SVM
    settings (``solver=liblinear`` is LinearSVC, for ComParE's many dimensions). c_patience:
    successive C values without a better validation UA that end the search along C (None:
    the whole grid; see :mod:`ser.baseline.estimator`). speaker_norm: z-score each speaker's
    functionals with that speaker's own blocks first (true/``speaker``; test speakers by their
    unlabelled test blocks, see :mod:`ser.baseline.estimator`). workers:
    processes extracting features in parallel (1: in this process). ``sample_rate`` (Hz) is
    the rate the blocks were decoded at: train.py passes the data module's.
    """

    def __init__(self, sample_rate: int = 16000, feature_set: str = "egemaps",
                 grids: Mapping[str, Grid] | None = None,
                 C: float | None = None, kernel: str | None = None,
                 gamma: str | float | None = None, solver: str | None = None,
                 class_weight: str | None = "balanced", break_ties: bool = True,
                 max_iter: int = 10000, workers: int = 1, c_patience: int | None = None,
                 speaker_norm: bool | str | None = False):
        if feature_set not in FEATURE_SETS:
            raise SerError(f"model.feature_set={feature_set!r}: use egemaps (eGeMAPS v02, 88 "
                           "functionals) or compare (ComParE 2016, 6,373 functionals).")
        self.sample_rate, self.feature_set = int(sample_rate), str(feature_set)
        self.workers = max(1, int(workers))
        super().__init__((grids or {}).get(feature_set), f"model.grids.{feature_set}",
                         c_patience=c_patience, speaker_norm=speaker_norm, C=C,
                         kernel=kernel, gamma=gamma, solver=solver, class_weight=class_weight,
                         break_ties=bool(break_ties), max_iter=int(max_iter))
        self.n_features = FEATURE_SETS[feature_set][1]
        self._smile = None
        self._pool: ProcessPoolExecutor | None = None
        self.opensmile_version = load_opensmile().__version__  # fails now, not after loading data

    @property
    def cache_label(self) -> str:
        """The feature cache's folder for these features (``baseline-features/<label>``)."""
        return f"opensmile-{self.feature_set}-{self.sample_rate}"

    @property
    def feature_key(self) -> str:
        """Everything a block's features depend on besides its samples (the feature cache's key)."""
        return (f"opensmile {self.opensmile_version} {FEATURE_SETS[self.feature_set][0]} "
                f"functionals sr {self.sample_rate} peak {INT16_PEAK!r} v{FEATURE_VERSION}")

    @property
    def feature_names(self) -> list[str]:
        return list(self.smile.feature_names)

    @property
    def smile(self):
        if self._smile is None:
            self._smile = make_smile(self.feature_set)
        return self._smile

    def features(self, blocks: np.ndarray) -> np.ndarray:
        """(B, T) float waveforms at ``sample_rate`` -> (B, D) float32 openSMILE functionals."""
        blocks = np.asarray(blocks, dtype=np.float32)
        if self.workers == 1 or len(blocks) < 2 * self.workers:
            return smile_functionals(self.smile, blocks, self.sample_rate)
        if self._pool is None:  # spawned, not forked: the parent may hold torch threads
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        parts = np.array_split(blocks, self.workers)
        return np.concatenate(list(self._pool.map(
            extract_in_worker, [self.feature_set] * len(parts), parts,
            [self.sample_rate] * len(parts))))

    def close(self) -> None:
        """Stop the worker processes (``workers`` > 1), if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __getstate__(self) -> dict:
        # the pickled estimator (checkpoints/baseline.pkl) holds no library handle or processes
        return {**self.__dict__, "_smile": None, "_pool": None}

    def __repr__(self) -> str:
        return (f"OpenSmileSvm(feature_set={self.feature_set}, {self.svm_repr()}"
                f"{self.norm_repr()})")

