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

**Per-speaker standardisation** (``speaker_norm``, off by default). Much of what separates
block features is who speaks, not how: pitch level, vocal-tract length, microphone. The field
commonly z-scores every feature with the mean and standard deviation of each speaker's own blocks
before the classifier (:func:`speaker_standardise`), so that what is left is each block's
departure from its speaker's habit. Statistics come from the blocks of the same speaker in the
same part: training speakers from their training blocks, validation speakers from their
validation blocks, and each test speaker from that speaker's own blocks of the one test set
being scored (the 0 dB set's blocks for the 0 dB set). That uses the test speaker's unlabelled
test audio at test time (transductive), as the field does; labels are never used. The global
standardisation and the SVM then follow as without it. The caller (:mod:`ser.baseline.run`)
knows the speakers and calls :meth:`SvmBaseline.normalise`; the fitted SVM itself is unchanged.
"""

from __future__ import annotations

import itertools
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from ser.baseline.gram_svm import GramLinearSVC, gram_matrix
from ser.errors import SerError
from ser.models.metrics import block_metrics

# The settings a grid may search, and their values when neither the config nor the grid sets them.
SVM_DEFAULTS: dict[str, Any] = {"C": 1.0, "kernel": "rbf", "gamma": "scale", "solver": "libsvm"}
SOLVERS = ("libsvm", "libsvm_gram", "liblinear")
SELECTION_METRIC = "validation UA (block level, mean recall over the classes validation holds)"
# A feature whose standard deviation within one speaker is under this (relative to its mean's
# size, at least 1) is only centred there: one block, or a value the speaker never changes.
SPEAKER_STD_FLOOR = 1e-8
SPEAKER_NORM_ON = ("speaker",)          # model.speaker_norm's string values that switch it on
SPEAKER_NORM_OFF = ("none", "off", "false")


Grid = Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]]


def sub_grids(grid: Grid | None, name: str = "model.grid") -> list[dict[str, list]]:
    """A grid as a list of sub-grids (plain dicts of lists): a mapping is one, a list of mappings
    is searched one after the other (as scikit-learn's ``param_grid`` list), so that each kernel
    gets its own C range. ``None`` or empty: no sub-grid."""
    if not grid:
        return []
    parts = [grid] if isinstance(grid, Mapping) else list(grid)
    if not all(isinstance(part, Mapping) and part for part in parts):
        raise SerError(f"{name}={grid!r}: give a mapping of settings to candidate lists, e.g. "
                       f"{name}.C=[0.1,1,10], or a list of such mappings searched one after the "
                       "other (e.g. one per kernel).")
    out = []
    for part in parts:
        for key, values in part.items():
            if key not in SVM_DEFAULTS or isinstance(values, (str, bytes)) \
                    or not isinstance(values, Sequence) or not values:
                raise SerError(f"{name}.{key}={values!r}: a grid maps one of "
                               f"{', '.join(SVM_DEFAULTS)} to a non-empty list of candidates, e.g. "
                               f"{name}.C=[0.1,1,10] (or {name}=null to fit the fixed settings).")
        out.append({str(k): list(v) for k, v in part.items()})
    return out


def grid_points(grid: Grid | None, name: str = "model.grid") -> list[dict[str, Any]]:
    """Every combination of a grid's candidates, the last key varying fastest: ``{"kernel":
    [rbf, linear], "C": [1, 10]}`` -> rbf/1, rbf/10, linear/1, linear/10; a list of sub-grids
    gives each one's points in turn. ``None`` or ``{}``: one empty point (the fixed settings).
    ``name``: the config key, for messages."""
    parts = sub_grids(grid, name)
    if not parts:
        return [{}]
    return [dict(zip(part, combo)) for part in parts
            for combo in itertools.product(*part.values())]


def make_svm(settings: Mapping[str, Any]) -> SVC | LinearSVC | GramLinearSVC:
    """The classifier of one setting: ``solver=libsvm`` -> :class:`SVC` (any kernel, one-vs-one);
    ``solver=libsvm_gram`` -> :class:`GramLinearSVC`, the same linear SVC fitted through the
    precomputed Gram matrix of the training items (one matrix product for the whole grid, then
    seconds per C; memory N² float64, see :mod:`ser.baseline.gram_svm`); ``solver=liblinear``
    -> :class:`LinearSVC` (linear kernel only, one-vs-rest, squared hinge loss), memory linear
    in N but its passes grow steeply with C. docs/speed.md has their fit times on ComParE."""
    solver, kernel = settings["solver"], settings["kernel"]
    if solver not in SOLVERS:
        raise SerError(f"model.solver={solver!r}: use libsvm (sklearn's SVC, any kernel), "
                       "libsvm_gram (the linear SVC through a precomputed Gram matrix: many "
                       "features, up to ~40,000 items) or liblinear (LinearSVC, linear kernel "
                       "only; memory linear in the items).")
    if solver in ("liblinear", "libsvm_gram") and kernel != "linear":
        raise SerError(f"model.solver={solver} fits a linear SVM only, but model.kernel is "
                       f"{kernel!r}: set model.kernel=linear, or model.solver=libsvm for "
                       "other kernels.")
    if solver == "liblinear":
        return LinearSVC(C=float(settings["C"]), class_weight=settings.get("class_weight"),
                         dual="auto", max_iter=int(settings.get("max_iter", 10000)))
    if solver == "libsvm_gram":
        return GramLinearSVC(C=float(settings["C"]), class_weight=settings.get("class_weight"),
                             break_ties=bool(settings.get("break_ties", True)))
    return SVC(C=float(settings["C"]), kernel=str(kernel), gamma=settings["gamma"],
               class_weight=settings.get("class_weight"),
               break_ties=bool(settings.get("break_ties", True)))


def validation_ua(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray,
                  n_classes: int) -> float:
    """Block-level UA of ``pipeline``'s predictions on (N, D) ``features`` against labels (N,),
    computed as run.json's ``validation.ua`` is (:func:`ser.models.metrics.block_metrics`)."""
    preds = torch.from_numpy(np.asarray(pipeline.predict(features), dtype=np.int64))
    return float(block_metrics(preds, torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                               n_classes)["ua"])


def speaker_norm_setting(value: Any) -> bool:
    """``model.speaker_norm`` as a bool: ``false``/``null``/``none`` -> False (the global
    scaler only); ``true``/``speaker`` -> True (per-speaker standardisation first)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in SPEAKER_NORM_ON or word == "true":
        return True
    if word in SPEAKER_NORM_OFF:
        return False
    raise SerError(f"model.speaker_norm={value!r}: use false (one standardisation over the "
                   "training blocks, as before) or true / speaker (each feature z-scored with "
                   "the mean and std of its speaker's own blocks in the same part or test set "
                   "first; at test time that uses the test speaker's unlabelled test blocks).")


def unknown_speakers(speakers: np.ndarray) -> np.ndarray:
    """(N,) bool: items whose speaker is not known (None or an empty name, as a manifest
    without a speaker column gives)."""
    return np.array([s is None or not str(s).strip() for s in speakers], dtype=bool)


def _standardise_rows(x: np.ndarray, rows: np.ndarray, basis: np.ndarray,
                      floor: float) -> np.ndarray:
    """x[rows] (R, D) z-scored with the mean and std (ddof 0) of x[basis]; a feature whose std
    is under ``floor`` times max(1, |mean|) is only centred, so one block gives zeros."""
    sample = x[basis]
    mean, std = sample.mean(axis=0), sample.std(axis=0)
    std = np.where(std < floor * np.maximum(1.0, np.abs(mean)), 1.0, std)
    return (x[rows] - mean) / std


def speaker_standardise(features: np.ndarray, speakers: np.ndarray,
                        fit: np.ndarray | None = None,
                        floor: float = SPEAKER_STD_FLOOR) -> np.ndarray:
    """(N, D) ``features``, each row z-scored with its speaker's mean and std per feature.

    ``speakers`` (N,): each row's speaker (any hashable; None or "" means unknown). The
    statistics of a speaker come from that speaker's rows where ``fit`` (N,) bool is true
    (None: all rows; a speaker with no such row uses all its rows): a test set's extra
    overlapping windows can then follow its grid blocks' statistics without changing them.
    Rows of unknown speakers are standardised with the whole set's statistics instead. A
    feature (nearly) constant within a speaker is only centred (see :data:`SPEAKER_STD_FLOOR`),
    so a speaker with a single block gets zeros, never NaN or inf. Returns a new (N, D)
    float64 array; rows keep their order.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(speakers) != len(x):
        raise SerError(f"Per-speaker standardisation needs (N, D) features and N speakers; got "
                       f"features of shape {x.shape} and {len(speakers)} speakers.")
    fit = np.ones(len(x), dtype=bool) if fit is None else np.asarray(fit, dtype=bool)
    out = np.empty_like(x)
    unknown = unknown_speakers(speakers)
    if unknown.any():
        everyone = np.ones(len(x), dtype=bool)
        out[unknown] = _standardise_rows(x, unknown, fit if fit.any() else everyone, floor)
    known = np.flatnonzero(~unknown)
    if len(known):
        names = np.array([str(s) for s in np.asarray(speakers, dtype=object)[known]], dtype=object)
        _, group = np.unique(names, return_inverse=True)
        for g in range(int(group.max()) + 1):
            rows = known[group == g]
            basis = rows[fit[rows]]
            out[rows] = _standardise_rows(x, rows, basis if len(basis) else rows, floor)
    return out


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
