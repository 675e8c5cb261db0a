"""The SVM settings a baseline may search and the classifier each setting makes: the grid's
form (:func:`sub_grids`, checked when the estimator is built, before any feature is extracted),
its points in the order they are tried (:func:`grid_points`: the order decides ties and the
stopping along C, see :mod:`ser.baseline.estimator`), and :func:`make_svm`, which turns one
point into scikit-learn's or :mod:`ser.baseline.gram_svm`'s classifier. Apart from the
estimator because the configs' grids are read and checked here without fitting anything.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

from sklearn.svm import SVC, LinearSVC

from ser.baseline.gram_svm import GramLinearSVC
from ser.errors import SerError

# The settings a grid may search, and their values when neither the config nor the grid sets them.
SVM_DEFAULTS: dict[str, Any] = {"C": 1.0, "kernel": "rbf", "gamma": "scale", "solver": "libsvm"}
SOLVERS = ("libsvm", "libsvm_gram", "liblinear")


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

