"""``MfccSvm``: per-block MFCC statistics -> StandardScaler -> SVC (``model=mfcc_svm``).

Fitting, the choice of settings on validation (``grid``) and the per-block probabilities are
:class:`ser.baseline.estimator.SvmBaseline`'s, shared with ``model=opensmile_svm``.
"""

from __future__ import annotations

import librosa
import numpy as np

from ser.baseline.estimator import SvmBaseline, agree_with
from ser.baseline.features import block_features, feature_names
from ser.baseline.svm_grid import Grid, sub_grids

__all__ = ["MfccSvm", "agree_with"]
FEATURE_VERSION = 1  # bump when ser.baseline.features changes its numbers: cached features go stale


class MfccSvm(SvmBaseline):
    """An RBF (or other kernel) SVM on per-block MFCC statistics, at the corpus sample rate.

    n_mfcc: MFCCs per frame; n_fft, hop_length: STFT frame and hop in samples; n_mels: mel
    bands the MFCCs are taken from; prosody: add pitch and energy statistics (6 values);
    C, kernel, gamma, class_weight, break_ties: as in :class:`sklearn.svm.SVC` (``balanced``
    weights classes inversely to their training counts; ``break_ties`` resolves tied
    one-vs-one votes by the decision values instead of by class order); C defaults to 3 when
    neither it nor ``grid`` sets it. grid: candidates chosen on the fold's validation part,
    e.g. ``{"C": [1, 3, 10]}`` (see :mod:`ser.baseline.estimator`). speaker_norm: z-score each
    speaker's features with that speaker's own blocks first (true/``speaker``; test speakers by
    their unlabelled test blocks, see :mod:`ser.baseline.estimator`). ``sample_rate`` (Hz) is
    the rate the blocks were decoded at: train.py passes the data module's.
    """

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 20, n_fft: int = 512,
                 hop_length: int = 160, n_mels: int = 40, prosody: bool = False,
                 C: float | None = None, kernel: str | None = None, gamma: str | float | None = None,
                 class_weight: str | None = "balanced", break_ties: bool = True,
                 solver: str | None = None, grid: Grid | None = None,
                 speaker_norm: bool | str | None = False):
        self.sample_rate, self.n_mfcc = int(sample_rate), int(n_mfcc)
        self.n_fft, self.hop_length, self.n_mels = int(n_fft), int(hop_length), int(n_mels)
        self.prosody = bool(prosody)
        if C is None and not any("C" in part for part in sub_grids(grid)):
            C = 3.0  # chosen on URDU's validation folds (docs/results.md, "Earlier measurements")
        super().__init__(grid, speaker_norm=speaker_norm, C=C, kernel=kernel, gamma=gamma,
                         solver=solver, class_weight=class_weight, break_ties=bool(break_ties))

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.n_mfcc, self.prosody)

    @property
    def cache_label(self) -> str:
        """The feature cache's folder for these features (``baseline-features/<label>``)."""
        return f"mfcc-{self.sample_rate}"

    @property
    def feature_key(self) -> str:
        """Everything a block's features depend on besides its samples (the feature cache's key)."""
        return (f"mfcc v{FEATURE_VERSION} librosa {librosa.__version__} sr {self.sample_rate} "
                f"n_mfcc {self.n_mfcc} n_fft {self.n_fft} hop {self.hop_length} "
                f"n_mels {self.n_mels} prosody {self.prosody}")

    def features(self, blocks: np.ndarray) -> np.ndarray:
        """(B, T) float waveforms at ``sample_rate`` -> (B, D) float64 feature vectors."""
        return block_features(blocks, self.sample_rate, n_mfcc=self.n_mfcc, n_fft=self.n_fft,
                              hop_length=self.hop_length, n_mels=self.n_mels, prosody=self.prosody)

    def __repr__(self) -> str:
        return (f"MfccSvm(n_mfcc={self.n_mfcc}, prosody={self.prosody}, n_fft={self.n_fft}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, {self.svm_repr()}"
                f"{self.norm_repr()})")
