"""Ensembles of finished runs: ``evaluate.py ensemble='[DIR_A, DIR_B]' out_dir=DIR``.

Each member folder holds one group of runs (a sweep of the five folds of one setting: the
recipe, EfficientNet-Lite1, an openSMILE SVM ...). For every fold that all members ran, the
class probabilities of their test predictions are averaged item by item (late fusion: a
network with a baseline fuses the network with the functionals), and the result is written as
a run folder of its own (``fold-<k>/``: predictions.csv, metrics.json, run.json, config.yaml,
split.csv), so that ``evaluate.py sweep=`` pools it, gives it intervals and pairs it with its
members like any other group. Nothing is retrained: the ensemble costs its members' runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from ser.atomic import write_json_atomic, write_text_atomic
from ser.errors import SerError
from ser.reporting.predictions import Predictions, read_predictions, write_predictions
from ser.reporting.run_discovery import FinishedRun, find_runs
from ser.reporting.statistics import align
from ser.run_layout import CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE, RUN_FILE, SPLIT_FILE


def member_runs(member: Path) -> dict[int, FinishedRun]:
    """Fold -> the finished run of that fold under ``member`` (one group: one run per fold)."""
    runs, _ = find_runs(member)
    by_fold: dict[int, FinishedRun] = {}
    for run in runs:
        fold = int(run.record.get("fold", -1))
        if fold in by_fold:
            raise SerError(f"{member} holds two finished runs of fold {fold} ({by_fold[fold].path} "
                           f"and {run.path}): an ensemble member is one setting's runs, one per "
                           "fold. Point ensemble= at each setting's own sweep folder.")
        if not (run.path / PREDICTIONS_FILE).is_file():
            raise SerError(f"{run.path} has no {PREDICTIONS_FILE}, so its probabilities cannot be "
                           "averaged; `evaluate.py ckpt=RUN` writes one.")
        by_fold[fold] = run
    if not by_fold:
        raise SerError(f"No finished run in {member}: an ensemble member is a folder of runs "
                       "train.py finished (metrics.json, run.json and predictions.csv).")
    return by_fold


def average(parts: Sequence[Predictions]) -> Predictions:
    """The first member's items with every member's probabilities (N, C) averaged, on the test
    sets every member has; one clear error if the members were not tested on the same items of
    those sets or with the same classes."""
    shared = set.intersection(*(set(p.test_set.tolist()) for p in parts))
    if not shared:
        raise SerError("The ensemble members share no test set: " + "; ".join(
            ", ".join(sorted(set(p.test_set.tolist()))) for p in parts) + ".")
    parts = [p.select(np.isin(p.test_set, sorted(shared))) for p in parts]
    first = parts[0]
    total = first.probs.astype(np.float64).copy()
    for other in parts[1:]:
        if other.classes != first.classes:
            raise SerError(f"Ensemble members with different classes cannot be averaged: "
                           f"{first.classes} and {other.classes}.")
        ia, ib = align(first, other)
        total[ia] += other.probs[ib]
    return Predictions(first.classes, first.test_set, first.fold, first.utterance, first.block,
                       first.speaker, first.label, total / len(parts), first.offset, text=first.text)


def test_set_metrics(pred: Predictions) -> dict[str, dict]:
    """metrics.json of an ensemble run: every reported metric per test set, from its items."""
    import torch

    from ser.models.metrics import score_test_set

    out = {}
    for name in dict.fromkeys(pred.test_set.tolist()):
        part = pred.select(pred.test_set == name)
        _, utterance = np.unique(part.utterance.astype(str), return_inverse=True)
        out[str(name)] = score_test_set(torch.from_numpy(part.probs), torch.from_numpy(part.label),
                                        torch.from_numpy(utterance.astype(np.int64)),
                                        torch.from_numpy((part.offset != 0).astype(np.int64)))
    return out


def _config(runs: Sequence[FinishedRun], members: list[str]) -> dict[str, Any]:
    """The first member's config, named for the ensemble: ``model.name`` joins the members'
    models and ``ensemble.members`` their folders, which tell its group apart in the reports."""
    first = runs[0].folder / CONFIG_FILE
    config = dict((yaml.safe_load(first.read_text()) if first.is_file() else None) or {})
    model = dict(config.get("model") or {})
    model["name"] = " + ".join(str(r.record.get("model", "?")) for r in runs)
    config.update(model=model, ensemble={"members": members})
    return config


def write_ensemble(members: Sequence[str | Path], out_dir: str | Path | None) -> dict[str, Any]:
    """Average the members' test probabilities fold by fold into ``out_dir/fold-<k>/`` run
    folders; returns ``{"out_dir", "folds", "members", "runs"}``."""
    if out_dir is None:
        raise SerError("ensemble= needs out_dir=DIR: the folder its fold runs are written to "
                       "(then `evaluate.py sweep=` of a folder holding it and its members).")
    paths = [Path(m).expanduser() for m in members or []]
    if len(paths) < 2:
        raise SerError(f"ensemble= needs two or more member folders, e.g. ensemble='[multirun/x/"
                       f"recipe, multirun/x/lite1]'; got {list(members or [])}.")
    for path in paths:
        if not path.is_dir():
            raise SerError(f"Ensemble member folder not found: {path}.")
    by_member = [member_runs(p) for p in paths]
    folds = sorted(set.intersection(*(set(m) for m in by_member)))
    if not folds:
        raise SerError("The ensemble members share no fold: " + "; ".join(
            f"{p} ran folds {sorted(m)}" for p, m in zip(paths, by_member)) + ".")
    out, names = Path(out_dir).expanduser(), [p.name for p in paths]
    written = []
    for fold in folds:
        runs = [m[fold] for m in by_member]
        pred = average([read_predictions(r.path / PREDICTIONS_FILE) for r in runs])
        folder = out / f"fold-{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        write_predictions(folder / PREDICTIONS_FILE, pred)
        if (runs[0].folder / SPLIT_FILE).is_file():
            shutil.copyfile(runs[0].folder / SPLIT_FILE, folder / SPLIT_FILE)
        write_text_atomic(folder / CONFIG_FILE, yaml.safe_dump(_config(runs, names), sort_keys=False))
        # no "training" record: an ensemble chose no checkpoint and has no validation score
        record = {k: v for k, v in runs[0].record.items() if k != "training"}
        record.update(model=" + ".join(str(r.record.get("model", "?")) for r in runs),
                      ensemble=[str(r.path) for r in runs],
                      wall_time_s=sum(float(r.record.get("wall_time_s") or 0) for r in runs))
        write_json_atomic(folder / RUN_FILE, record)
        write_json_atomic(folder / METRICS_FILE, test_set_metrics(pred))  # last: the run is finished
        written.append(str(folder))
    return {"out_dir": str(out), "folds": folds, "members": [str(p) for p in paths], "runs": written}


def describe_ensemble(result: dict) -> str:
    members = ", ".join(result["members"])
    return (f"Averaged the test probabilities of {members} on folds "
            f"{', '.join(map(str, result['folds']))}: {len(result['runs'])} run folder(s) in "
            f"{result['out_dir']}. `evaluate.py sweep=DIR` of a folder holding it and its members "
            "pools it and pairs it with them.")
