"""``GramLinearSVC``: libsvm's linear-kernel SVC, fitted through a precomputed Gram matrix.

Why: ComParE's 6,373 functionals on a real corpus's noisy copies (13,000 training items per
ASED fold) make ``SVC(kernel="linear")`` recompute each kernel row from the features on every
cache miss, and liblinear's ``LinearSVC`` needs minutes to tens of minutes per C value as C
grows. The Gram matrix ``K = X Xᵀ`` of the standardised training features is one BLAS product
(N² float64: 1.3 GB and about 20 s on one core for 13,000 items), after which libsvm's SMO
works from memory: every C of a grid is then seconds, and the same matrix serves all of them.

The optimisation problem is exactly ``SVC(kernel="linear")``'s (hinge loss, one-vs-one, the
same ``C`` and ``class_weight``), so the fitted model is that SVM up to floating-point
rounding. After fitting, each one-vs-one pair's dual solution is folded into its primal weight
vector (``w = Σ αᵢ yᵢ xᵢ`` over the pair's support vectors), so prediction is a (N, D) x (D, P)
product and the pickled model holds P = k(k-1)/2 weight vectors, not the support vectors.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import SVC

from ser.errors import SerError

GRAM_MAX_ITEMS = 40_000  # 40,000² float64 = 12.8 GB: beyond it, say so instead of swapping


def gram_matrix(features: np.ndarray, max_items: int = GRAM_MAX_ITEMS) -> np.ndarray:
    """(N, D) features -> (N, N) float64 linear kernel ``X Xᵀ``."""
    n = len(features)
    if n > max_items:
        raise SerError(f"model.solver=libsvm_gram needs an N x N Gram matrix, and this training "
                       f"part has N = {n:,} items ({8 * n * n / 2**30:.0f} GiB; the limit is "
                       f"{max_items:,}). Use model.solver=liblinear (LinearSVC, memory linear in "
                       "N) for this corpus, e.g. model.grids.compare.solver=[liblinear].")
    x = np.ascontiguousarray(features, dtype=np.float64)
    return x @ x.T


class GramLinearSVC(ClassifierMixin, BaseEstimator):
    """A linear SVC (hinge loss, one-vs-one) fitted on the Gram matrix of its (N, D) inputs.

    C, class_weight, break_ties: as :class:`sklearn.svm.SVC`. ``fit(x, y, gram=K)`` reuses a
    Gram matrix already computed for the same ``x`` (a grid over C computes it once).
    ``decision_function`` is (N, k) in SVC's ``ovr`` shape (votes plus bounded confidences),
    ``predict`` its argmax with ``break_ties`` (else libsvm's vote, ties to the first class).
    """

    def __init__(self, C: float = 1.0, class_weight: str | None = None, break_ties: bool = True,
                 cache_size: float = 200.0):
        self.C, self.class_weight, self.break_ties = C, class_weight, break_ties
        self.cache_size = cache_size

    def fit(self, x: np.ndarray, y: np.ndarray, gram: np.ndarray | None = None) -> "GramLinearSVC":
        x = np.asarray(x, dtype=np.float64)
        kernel = gram_matrix(x) if gram is None else gram
        svc = SVC(kernel="precomputed", C=float(self.C), class_weight=self.class_weight,
                  cache_size=self.cache_size, decision_function_shape="ovo").fit(kernel, y)
        self.classes_ = svc.classes_
        self.coef_, self.intercept_ = _pair_weights(svc, x)
        self.n_support_ = svc.n_support_
        return self

    def _pair_decisions(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, P) one-vs-one decision values, pairs (0,1), (0,2), ..., (k-2,k-1);
        positive means the pair's first class."""
        return np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_

    def _votes(self, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, P) pair decisions -> (N, K) one-vs-one votes and summed confidences (libsvm's)."""
        k = len(self.classes_)
        votes, confidence = np.zeros((len(dec), k)), np.zeros((len(dec), k))
        for p, (i, j) in enumerate((i, j) for i in range(k) for j in range(i + 1, k)):
            first = dec[:, p] > 0
            votes[first, i] += 1
            votes[~first, j] += 1
            confidence[:, i] += dec[:, p]
            confidence[:, j] -= dec[:, p]
        return votes, confidence

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        dec = self._pair_decisions(x)
        if len(self.classes_) == 2:
            return -dec[:, 0]  # SVC's binary convention: positive means classes_[1]
        votes, confidence = self._votes(dec)
        # as SVC's ovr shape: confidences squashed into (-1/3, 1/3) so they only break vote ties
        return votes + confidence / (3 * (np.abs(confidence) + 1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(self.classes_) == 2:
            return self.classes_[(self.decision_function(x) > 0).astype(int)]
        if self.break_ties:
            return self.classes_[self.decision_function(x).argmax(axis=1)]
        votes, _ = self._votes(self._pair_decisions(x))
        return self.classes_[votes.argmax(axis=1)]  # libsvm's vote, ties to the first class


def _pair_weights(svc: SVC, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each one-vs-one pair's primal (w, b) from a precomputed-kernel SVC's dual solution.

    libsvm stores, for the support vectors of class i, their coefficients against every other
    class j in ``dual_coef_[j-1 if j > i else j]``; pair (i, j)'s weight vector sums class i's
    support vectors with their row for j and class j's with their row for i. Signs follow
    libsvm: a positive decision value means the pair's first class.
    """
    k = len(svc.classes_)
    starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
    sv = x[svc.support_]
    weights, p = np.zeros((k * (k - 1) // 2, x.shape[1])), 0
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            weights[p] = svc.dual_coef_[j - 1, si] @ sv[si] + svc.dual_coef_[i, sj] @ sv[sj]
            p += 1
    intercept = np.asarray(svc.intercept_, dtype=np.float64)
    if k == 2:  # sklearn flips a binary SVC's dual_coef_ and intercept_ (positive: classes_[1])
        return -weights, -intercept
    return weights, intercept
