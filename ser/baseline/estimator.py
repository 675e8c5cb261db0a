"""What every SVM baseline shares: standardise -> SVM, settings chosen on validation, and
per-block class probabilities.

**Choosing on validation.** A baseline is only fair if it is tuned as carefully as the network
it is compared with, and only on data the network could also have used for choosing: the fold's
validation part. ``grid`` maps SVM settings (``C``, ``kernel``, ``gamma``, ``solver``) to the
candidates tried; every point of their product is fitted on the training part and scored by
block-level unweighted accuracy (UA, the mean recall over the classes validation holds: the
network's checkpoint metric, ``select.monitor=val/ua``) on the validation part. The best point's
model, fitted on the training part only, is kept; the test sets are never looked at. A tie
goes to the earlier point in the grid's order (list C ascending and the smaller, more strongly
regularised model wins). The grid, every point's validation UA and fit time, and the choice
are kept in :attr:`SvmBaseline.selection` (run.json's ``selection``).

**Stopping along C.** Fitting a linear SVM on thousands of ComParE vectors costs more the
larger C is (the solver needs more passes as regularisation weakens), and validation UA
over C typically rises to one peak and falls. ``c_patience=k`` searches each series of C
values (the points that share every other setting, C in the order listed: ascending) until
validation UA has failed to beat the series' best at ``k`` successive values, and skips the
rest of that series; run.json lists the skipped points. ``None`` fits the whole grid.

**Probabilities.** The test metrics need per-block class probabilities: a softmax over the
SVM's one-vs-rest decision values (no Platt scaling: it would cost a 5-fold internal fit and its
argmax can disagree with the SVM's prediction), adjusted where needed so that their argmax is
always the SVM's own prediction (:func:`agree_with`): the block metrics score what the SVM
predicts, and the probabilities only break ties between an utterance's block votes.

**Per-speaker standardisation** (``speaker_norm``, off by default): each feature z-scored with
the mean and std of its speaker's own blocks before the classifier; see
:mod:`ser.baseline.speaker_norm` for why and where the statistics come from. The caller
(:mod:`ser.baseline.run`) knows the speakers and calls :meth:`SvmBaseline.normalise`; the fitted
SVM itself is unchanged.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ser.baseline.gram_svm import gram_matrix
from ser.baseline.speaker_norm import speaker_norm_setting, speaker_standardise
from ser.baseline.svm_grid import SVM_DEFAULTS, grid_points, make_svm, sub_grids
from ser.errors import SerError
from ser.models.metrics import block_metrics

SELECTION_METRIC = "validation UA (block level, mean recall over the classes validation holds)"


def validation_ua(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray,
                  n_classes: int) -> float:
    """Block-level UA of ``pipeline``'s predictions on (N, D) ``features`` against labels (N,),
    computed as run.json's ``validation.ua`` is (:func:`ser.models.metrics.block_metrics`)."""
    preds = torch.from_numpy(np.asarray(pipeline.predict(features), dtype=np.int64))
    return float(block_metrics(preds, torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                               n_classes)["ua"])



class SvmBaseline:
    """Standardise (N, D) block features, then an SVM chosen on validation from ``grid``.

    Subclasses define :meth:`features` ((B, T) float waveforms -> (B, D)) and
    :attr:`feature_key` (a string naming everything the features depend on, for the feature
    cache). ``settings`` are the fixed SVM settings (``C``, ``kernel``, ``gamma``, ``solver``,
    ``class_weight``, ``break_ties``; None: the grid's or :data:`SVM_DEFAULTS`' value); a key
    may be fixed or searched, not both. ``grid_name``: the grid's config key, for messages.
    ``is_baseline`` marks the class a ``model`` config's ``_target_`` names as a baseline, so
    train.py fits it here instead of training a network (no ``kind`` key to keep in step).
    ``speaker_norm`` (see :func:`speaker_norm_setting`): standardise each speaker's features
    first (:meth:`normalise`, applied by the caller, who knows the speakers).
    """

    is_baseline = True
    speaker_norm = False  # the class default: estimators pickled before the setting existed

    def __init__(self, grid: Mapping[str, Sequence] | None = None, grid_name: str = "model.grid",
                 c_patience: int | None = None, speaker_norm: bool | str | None = False,
                 **settings: Any):
        self.speaker_norm = speaker_norm_setting(speaker_norm)
        if c_patience is not None and (isinstance(c_patience, bool) or int(c_patience) < 1):
            raise SerError(f"model.c_patience={c_patience!r}: give a whole number of at least 1 "
                           "(how many successive C values without a better validation UA end "
                           "the search along C) or null to fit every point of the grid.")
        self.c_patience = None if c_patience is None else int(c_patience)
        if settings.get("class_weight") not in (None, "balanced"):
            raise SerError(f"model.class_weight={settings['class_weight']!r}: use balanced "
                           "(weights inversely proportional to the training class counts) or "
                           "null (every block weighs the same).")
        parts = sub_grids(grid, grid_name)  # checks its form now, not after the features are extracted
        self.grid = (parts[0] if len(parts) == 1 else parts) or None
        searched = {k: v for part in parts for k, v in part.items()}
        self.searched_keys = frozenset(searched)  # the settings the grid chooses, not the config
        both = sorted(k for k in searched if settings.get(k) is not None)
        if both:
            key = both[0]
            raise SerError(f"model.{key}={settings[key]!r} is fixed but {grid_name} also searches "
                           f"{key} ({searched[key]}): give one of the two (drop model.{key}, "
                           f"set {grid_name}.{key}=[{settings[key]}], or {grid_name}=null to fix "
                           "every setting).")
        self.settings = {k: (SVM_DEFAULTS[k] if settings.get(k) is None and k in SVM_DEFAULTS
                             else settings.get(k)) for k in {**SVM_DEFAULTS, **settings}}
        self.pipeline: Pipeline | None = None
        self.n_classes = 0
        self.chosen: dict[str, Any] = {}
        self.selection: dict[str, Any] | None = None

    # -- to define in subclasses: the features and what they depend on (the feature cache's
    # folder name and key, see ser.baseline.extraction)
    cache_label: str = "features"
    feature_key: str = ""

    def features(self, blocks: np.ndarray) -> np.ndarray:
        """(B, T) float waveforms -> (B, D) float64 features: each subclass's own extractor
        (MfccSvm, OpenSmileSvm); the base class has none."""
        raise NotImplementedError(f"{type(self).__name__} defines no features()")

    # -- per-speaker standardisation
    def normalise(self, features: np.ndarray, speakers: np.ndarray,
                  fit: np.ndarray | None = None) -> np.ndarray:
        """(N, D) features as the scaler and SVM see them: ``features`` themselves (the same
        array) when ``speaker_norm`` is off, else :func:`speaker_standardise` of them by the
        items' ``speakers`` (N,), with statistics from the rows where ``fit`` (N,) is true."""
        if not self.speaker_norm:
            return features
        return speaker_standardise(features, speakers, fit)

    def norm_repr(self) -> str:
        """``, speaker_norm=True`` for the estimator's repr when it is on; else nothing, so a
        run without it records the same ``estimator`` as before the setting existed."""
        return ", speaker_norm=True" if self.speaker_norm else ""

    # -- fitting
    def _fit_one(self, point: Mapping[str, Any], features: np.ndarray,
                 labels: np.ndarray, gram: dict) -> tuple[Pipeline, bool]:
        """Fit one grid point. ``gram``: the fit's memo of the standardised features and their
        Gram matrix, filled by the first ``libsvm_gram`` point and reused by the others."""
        settings = {**self.settings, **point}
        try:
            svm = make_svm(settings)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                if settings["solver"] == "libsvm_gram":
                    if not gram:  # one standardisation and one Gram matrix for the whole grid
                        gram["scaler"] = StandardScaler().fit(features)
                        gram["x"] = gram["scaler"].transform(features)
                        gram["k"] = gram_matrix(gram["x"])
                    pipeline = make_pipeline(gram["scaler"], svm)
                    svm.fit(gram["x"], labels, gram=gram["k"])
                else:
                    pipeline = make_pipeline(StandardScaler(), svm).fit(features, labels)
        except ValueError as exc:  # e.g. an unknown kernel or gamma
            raise SerError(f"The SVM refused its settings {dict(point) or ''}({exc}). Check "
                           "model.kernel (rbf, linear, poly, sigmoid), model.gamma (scale, auto "
                           "or a positive number) and model.C (a positive number), in the "
                           "config and in model.grid.") from None
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return pipeline, converged

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
            val_features: np.ndarray | None = None,
            val_labels: np.ndarray | None = None) -> "SvmBaseline":
        """Fit on (N, D) training features and class ids (N,) in ``0..n_classes-1``.

        With a grid of more than one point, each point is fitted on the training data and scored
        on (M, D) ``val_features`` / (M,) ``val_labels``; the best point's model is kept (see
        the module's docstring). The validation data are never fitted on.
        """
        present = np.unique(labels)
        if len(present) < 2:
            raise SerError(f"The training fold holds blocks of {len(present)} class(es) only; an "
                           "SVM needs at least two. Check the corpus labels and the split "
                           "(split=..., fold=...): every class should appear in training.")
        points = grid_points(self.grid)
        if len(points) > 1 and (val_features is None or val_labels is None or not len(val_labels)):
            raise SerError(f"model.grid has {len(points)} settings to choose from, but the fold "
                           "has no validation blocks to choose them on. Use a split with a "
                           "validation part, or fix the settings (model.grid=null).")
        self.n_classes = int(n_classes)
        results, best_ua, gram = [], -np.inf, {}
        series: dict[tuple, list[float]] = {}  # other settings -> (series best, misses in a row)
        for point in points:
            others = tuple(sorted((k, str(v)) for k, v in point.items() if k != "C"))
            best_here, misses = series.get(others, (-np.inf, 0))
            if self.c_patience is not None and "C" in point and misses >= self.c_patience:
                results.append({**point, "validation_ua": None, "skipped": (
                    f"validation UA did not improve at the {misses} smaller C value(s) before "
                    f"it (model.c_patience={self.c_patience})")})
                continue
            started = time.perf_counter()
            pipeline, converged = self._fit_one(point, features, labels, gram)
            seconds = time.perf_counter() - started
            ua = (validation_ua(pipeline, val_features, val_labels, self.n_classes)
                  if val_labels is not None and len(val_labels) else None)
            results.append({**point, "validation_ua": ua, "fit_seconds": round(seconds, 3),
                            "converged": converged})
            if ua is not None:
                series[others] = (ua, 0) if ua > best_here else (best_here, misses + 1)
            if ua is None or ua > best_ua:  # strictly better: ties keep the earlier point
                best_ua, self.pipeline = (-np.inf if ua is None else ua), pipeline
                self.chosen = {**self.settings, **point}
        self.selection = {"metric": SELECTION_METRIC, "grid": self.grid,
                          "results": results, "chosen": self.chosen,
                          "validation_ua": None if best_ua == -np.inf else best_ua}
        return self

    def predict_scores(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, n_classes) float64, predicted class ids (N,)) of (N, D) features.

        A class absent from training gets probability 0. The argmax of each row is the SVM's
        prediction.
        """
        if self.pipeline is None:
            raise RuntimeError(f"{type(self).__name__}.fit() has not run yet")
        svm = self.pipeline[-1]
        preds = self.pipeline.predict(features).astype(np.int64)
        decision = np.asarray(self.pipeline.decision_function(features), dtype=np.float64)
        if decision.ndim == 1:  # two classes: positive values mean svm.classes_[1]
            decision = np.stack([-decision, decision], axis=1) / 2
        scores = np.full((len(features), self.n_classes), -np.inf)
        scores[:, svm.classes_] = decision
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return agree_with(probs, preds), preds

    def svm_repr(self) -> str:
        """The SVM settings in use: the chosen ones once fitted, else the fixed ones and the grid."""
        if self.chosen:
            return repr(self.chosen)
        fixed = {k: v for k, v in self.settings.items() if k not in self.searched_keys}
        return repr({**fixed, **({"grid": self.grid} if self.grid else {})})


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
