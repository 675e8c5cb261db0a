"""``MfccSvm``: block features -> StandardScaler -> SVC, with per-block class probabilities.

The probabilities the test metrics need come from a softmax over the SVC's one-vs-rest
decision values (no Platt scaling: it would cost a 5-fold internal fit and its argmax can
disagree with the SVC's prediction). They are adjusted where needed so that their argmax is
always the SVC's own prediction: the block metrics score what the SVM predicts, and the
probabilities only break ties between an utterance's block votes.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ser.baseline.features import block_features, feature_names
from ser.errors import SerError


class MfccSvm:
    """An RBF (or other kernel) SVM on per-block MFCC statistics, at the corpus sample rate.

    n_mfcc: MFCCs per frame; n_fft, hop_length: STFT frame and hop in samples; n_mels: mel
    bands the MFCCs are taken from; prosody: add pitch and energy statistics (6 values);
    C, kernel, gamma, class_weight, break_ties: as in :class:`sklearn.svm.SVC` (``balanced``
    weights classes inversely to their training counts; ``break_ties`` resolves tied
    one-vs-one votes by the decision values instead of by class order). ``sample_rate`` (Hz)
    is the rate the blocks were decoded at: train.py passes the data module's.
    """

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 20, n_fft: int = 512,
                 hop_length: int = 160, n_mels: int = 40, prosody: bool = False, C: float = 3.0,
                 kernel: str = "rbf", gamma: str | float = "scale",
                 class_weight: str | None = "balanced", break_ties: bool = True):
        self.sample_rate, self.n_mfcc = int(sample_rate), int(n_mfcc)
        self.n_fft, self.hop_length, self.n_mels = int(n_fft), int(hop_length), int(n_mels)
        self.prosody = bool(prosody)
        if class_weight not in (None, "balanced"):
            raise SerError(f"model.class_weight={class_weight!r}: use balanced (weights inversely "
                           "proportional to the training class counts) or null (every block "
                           "weighs the same).")
        self.svc_params = dict(C=float(C), kernel=str(kernel), gamma=gamma,
                               class_weight=class_weight, break_ties=bool(break_ties))
        self.pipeline: Pipeline | None = None
        self.n_classes = 0

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.n_mfcc, self.prosody)

    def features(self, blocks: np.ndarray) -> np.ndarray:
        """(B, T) float waveforms at ``sample_rate`` -> (B, D) float64 feature vectors."""
        return block_features(blocks, self.sample_rate, n_mfcc=self.n_mfcc, n_fft=self.n_fft,
                              hop_length=self.hop_length, n_mels=self.n_mels, prosody=self.prosody)

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int) -> "MfccSvm":
        """Standardise (N, D) features and fit the SVC on class ids (N,) in ``0..n_classes-1``."""
        present = np.unique(labels)
        if len(present) < 2:
            raise SerError(f"The training fold holds blocks of {len(present)} class(es) only; an "
                           "SVM needs at least two. Check the corpus labels and the split "
                           "(split=..., fold=...): every class should appear in training.")
        self.n_classes = int(n_classes)
        try:
            self.pipeline = make_pipeline(StandardScaler(), SVC(**self.svc_params))
            self.pipeline.fit(features, labels)
        except ValueError as exc:  # e.g. an unknown kernel or gamma
            raise SerError(f"The SVM refused its settings ({exc}). Check model.kernel (rbf, "
                           "linear, poly, sigmoid), model.gamma (scale, auto or a positive "
                           "number) and model.C (a positive number).") from None
        return self

    def predict_scores(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, n_classes) float64, predicted class ids (N,)) of (N, D) features.

        A class absent from training gets probability 0. The argmax of each row is the SVC's
        prediction.
        """
        if self.pipeline is None:
            raise RuntimeError("MfccSvm.fit() has not run yet")
        svc: SVC = self.pipeline[-1]
        preds = self.pipeline.predict(features).astype(np.int64)
        decision = np.asarray(self.pipeline.decision_function(features), dtype=np.float64)
        if decision.ndim == 1:  # two classes: positive values mean svc.classes_[1]
            decision = np.stack([-decision, decision], axis=1) / 2
        scores = np.full((len(features), self.n_classes), -np.inf)
        scores[:, svc.classes_] = decision
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return agree_with(probs, preds), preds

    def __repr__(self) -> str:
        return (f"MfccSvm(n_mfcc={self.n_mfcc}, prosody={self.prosody}, n_fft={self.n_fft}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, {self.svc_params})")


def agree_with(probs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """``probs`` (N, C) with rows nudged where needed so that ``argmax == preds`` (N,).

    Only rows whose argmax differs (a tie, or a one-vs-one vote the one-vs-rest decision values
    order otherwise) change: the predicted class gets the row's largest value plus a margin,
    then the row is renormalised (dividing by one sum keeps the order).
    """
    probs = np.array(probs, dtype=np.float64)
    rows = np.flatnonzero(probs.argmax(axis=1) != preds)
    if len(rows):
        probs[rows, preds[rows]] = probs[rows].max(axis=1) + 1e-6
        probs[rows] /= probs[rows].sum(axis=1, keepdims=True)
    return probs
