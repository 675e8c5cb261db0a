"""A sweep's finished runs, grouped by everything but the fold, as mean ± std over folds.

Every run directory under the sweep (at any depth) that holds ``metrics.json`` and ``run.json``
counts. Runs are grouped by their resolved ``config.yaml`` minus the keys listed in
``sweep_ignore`` (the fold, locations, hardware, tracker): two runs fall in one group exactly
when they differ only there. Standard deviations are sample ones (n - 1), over the runs of a
group; a group of one run has none.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ser.config_upgrade import is_baseline_config, removed_defaults
from ser.reporting.run_discovery import (RETEST_PREFIX, FinishedRun, _run_settings,  # noqa: F401
                                         find_retests, find_runs, flatten, has_metrics)
from ser.reporting.generalisation import matching_test_sets, validation_gap
from ser.reporting.tables import METRICS, NOISY_MEAN
from ser.set_names import condition, is_own_set, recorded_test_sets

@dataclass
class RunGroup:
    """Runs that differ only in ignored keys (normally: only in the fold)."""

    settings: dict
    runs: list[FinishedRun] = field(default_factory=list)
    label: str = ""

    @property
    def folds(self) -> list[int]:
        return sorted(int(r.record.get("fold", -1)) for r in self.runs)

    @property
    def recorded_test_sets(self) -> dict[str, dict]:
        """Each test set's corpus and condition, as the runs recorded them."""
        return recorded_test_sets(r.record for r in self.runs)

    @property
    def regime(self) -> str:
        return str(self.runs[0].record.get("regime", "unknown"))

    @property
    def is_baseline(self) -> bool:
        """A conventional baseline's runs (an SVM's ``model._target_``, or ``model.kind: sklearn``
        in configs saved before the targets), not a network's."""
        model = {key: json.loads(self.settings[f"model.{key}"]) for key in ("kind", "_target_")
                 if f"model.{key}" in self.settings}
        return is_baseline_config(model)

    @property
    def dataset(self) -> str:
        """The corpus: the dataset config's name, or for dataset=manifest the corpus it read."""
        record = self.runs[0].record
        name = str(record.get("dataset", "unknown"))
        corpus = (record.get("data_fingerprint") or {}).get("corpus")
        return str(corpus) if name == "manifest" and corpus else name

    @property
    def test_sets(self) -> list[str]:
        names: list[str] = []
        for run in self.runs:
            names += [n for n in run.metrics if n not in names]
        return names

    def validation_ua(self) -> dict[str, Any] | None:
        """The score settings are chosen on, per fold: ``{"mean", "std", "n", "per_fold",
        "test_ua", "gap", "validation"}`` (UA as fractions; per_fold maps fold -> UA; test_ua and
        gap are the means over the folds of the test UA in the validation part's conditions (clean
        and the training SNRs) and of validation minus that; validation says whose voices validated), or None when no run
        recorded one."""
        scored = [(r, validation_score(r.record)) for r in self.runs]
        scores = {int(r.record.get("fold", -1)): v for r, v in scored}
        scores = {f: v for f, v in sorted(scores.items()) if v is not None}
        if not scores:
            return None
        values = np.array(list(scores.values()), dtype=np.float64)
        gaps = [validation_gap(v, r.metrics,
                               test_sets=matching_test_sets(_setting(r, "snr", "clean"),
                                                            _setting(r, "data.all_snrs", [15, 20, 40])))
                for r, v in scored if v is not None]
        gaps = [g for g in gaps if g is not None]
        kinds = sorted({json.loads(r.settings.get("split.validation", "null")) or "" for r in self.runs} - {""})
        return {"mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "n": int(len(values)), "per_fold": scores,
                "test_ua": float(np.mean([g["test_ua"] for g in gaps])) if gaps else None,
                "gap": float(np.mean([g["gap"] for g in gaps])) if gaps else None,
                "validation": "/".join(kinds) or None, "shared_text": self._shared_text_validation()}

    def _shared_text_validation(self) -> dict[str, Any] | None:
        """The selected checkpoints' validation UA on the texts several classes speak
        (``training.selected.ua_shared_text``): ``{"mean", "per_fold"}``, or None."""
        per_fold = {int(r.record.get("fold", -1)): float(v) for r in self.runs
                    if (v := ((r.record.get("training") or {}).get("selected") or {}).get("ua_shared_text"))
                    is not None}
        if not per_fold:
            return None
        return {"mean": float(np.mean(list(per_fold.values()))), "per_fold": dict(sorted(per_fold.items()))}

    def stats(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``[test_set][metric] = {"mean", "std", "n"}`` over the runs that have that test set."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for name in self.test_sets:
            out[name] = {}
            for key in METRICS:
                values = np.array([r.metrics[name][key] for r in self.runs if name in r.metrics],
                                  dtype=np.float64)
                std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                out[name][key] = {"mean": float(values.mean()), "std": std, "n": int(len(values))}
        recorded = self.recorded_test_sets
        noisy = [n for n in self.test_sets if is_noisy_test_set(n, recorded)]
        if noisy and "clean" in self.test_sets:
            # the robustness summary: each run's mean over its noisy test sets, then over runs
            out[NOISY_MEAN] = {}
            for key in METRICS:
                values = np.array([np.mean([r.metrics[n][key] for n in noisy if n in r.metrics])
                                   for r in self.runs], dtype=np.float64)
                std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                out[NOISY_MEAN][key] = {"mean": float(values.mean()), "std": std, "n": int(len(values))}
        return out


def _setting(run: FinishedRun, key: str, default: Any) -> Any:
    """One of a run's settings (its flattened config), as the value it was."""
    text = run.settings.get(key)
    return default if text is None else json.loads(text)


def validation_score(record: Mapping[str, Any]) -> float | None:
    """A run's validation UA, the score its settings are chosen on (never a test set's): a
    network's selected checkpoint's validation UA (``training.selected.ua``; runs that predate
    it: its score, when it monitors ``val/ua``), a baseline's chosen SVM's UA on the validation
    part (``validation.ua``); None if neither."""
    selected = (record.get("training") or {}).get("selected") or {}
    if selected.get("ua") is not None:
        return float(selected["ua"])
    if selected.get("monitor") == "val/ua" and selected.get("score") is not None:
        return float(selected["score"])
    validation = record.get("validation") or {}
    return float(validation["ua"]) if validation.get("ua") is not None else None


def is_noisy_test_set(name: str, recorded: Mapping[str, dict] | None = None) -> bool:
    """A noisy test set of the run's own corpus (``0dB`` ...), not ``clean``, not another
    corpus's (``urdu/0dB``) and not the summary row itself (``recorded``: the runs' own account
    of their test sets, :func:`ser.set_names.recorded_test_sets`)."""
    return name != NOISY_MEAN and condition(name, recorded) != "clean" and is_own_set(name, recorded)


def _ignored(key: str, ignore: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in ignore)


def group_runs(runs: Sequence[FinishedRun], ignore: Sequence[str]) -> list[RunGroup]:
    """Groups of runs with equal settings once the ``ignore`` patterns are dropped, labelled by
    the settings that tell groups apart (``snr=clean``), clean-trained groups first."""
    groups: dict[tuple, RunGroup] = {}
    for run in runs:
        kept = {k: v for k, v in run.settings.items() if not _ignored(k, ignore)}
        groups.setdefault(tuple(sorted(kept.items())), RunGroup(kept)).runs.append(run)
    ordered = list(groups.values())
    for group, label in zip(ordered, distinguishing_labels([g.settings for g in ordered])):
        group.label = label or f"snr={group.runs[0].record.get('snr', '?')}"
    ordered.sort(key=lambda g: (g.dataset, g.regime != "clean", g.label))
    return ordered


# Keys a label names first, and how: ``model=mfcc_svm`` tells a baseline's rows from a deep
# model's before anything else (the name it was chosen by on the command line).
LEADING_KEYS = {"model.name": "model"}
# Keys tried right after them: what a reader compares by (a baseline's feature set before its
# SVM settings, which may differ between the same groups; the speech gate's threshold, in
# training and in a re-test, before the detector's settings).
PREFERRED_KEYS = ("model.feature_set", "data.min_speech", f"{RETEST_PREFIX}data.min_speech",
                  f"{RETEST_PREFIX}data.test_hop")


def distinguishing_labels(settings: Sequence[Mapping[str, str]]) -> list[str]:
    """``key=value, ...`` of the keys whose values differ between the settings (one label each).

    Keys are taken in order (``model.name`` first, as ``model=``, then :data:`PREFERRED_KEYS` in
    their order, then the shortest paths) and
    a key is shown only if it tells apart settings that the keys shown so far do not: ``data.snr``
    adds nothing to ``snr``, nor a network's ``optim.lr`` to ``model=`` (a baseline has none),
    but two ``opensmile_svm`` groups are told apart by ``model.feature_set``.
    A key a setting lacks is named (``key=unset``) only where nothing else tells it apart.
    """
    off = {k: json.dumps(v) for k, v in removed_defaults().items()
           if any(k in s or any(j.startswith(k + ".") for j in s) for s in settings)}
    keys = sorted({k for s in settings for k in s} | set(off),
                  key=lambda k: (k not in LEADING_KEYS,
                                 PREFERRED_KEYS.index(k) if k in PREFERRED_KEYS else len(PREFERRED_KEYS),
                                 k.count("."), len(k), k))
    columns: dict[str, tuple] = {}
    joint: list[tuple] = [() for _ in settings]  # each setting's values of the keys shown so far
    for key in keys:
        column = tuple(s[key] if key in s else _nested(s, key) or off.get(key) for s in settings)
        refined = [(*j, v) for j, v in zip(joint, column)]
        if len(set(refined)) > len(set(joint)):
            columns[key] = column
            joint = refined
    full = [", ".join(f"{LEADING_KEYS.get(k, k)}={_shown(col[i], k)}" for k, col in columns.items())
            for i in range(len(settings))]
    # a key a group lacks (a network's model.pretrained, for a baseline) is left out of its
    # label, unless that is what tells the group apart
    short = [", ".join(f"{LEADING_KEYS.get(k, k)}={_shown(col[i], k)}" for k, col in columns.items()
                       if col[i] is not None) for i in range(len(settings))]
    return [s if s and short.count(s) == 1 else f for s, f in zip(short, full)]


def _nested(setting: Mapping[str, str], key: str) -> str | None:
    """The JSON text of the sub-keys a setting has under ``key`` (a lever set to a mapping,
    ``augment.specaugment={time_masks: 2}``, flattens to ``augment.specaugment.time_masks``), so
    that a group that set it reads ``augment.specaugment={"time_masks": 2}`` beside the groups
    where it is null;
    None where it has none."""
    head = key + "."
    sub = {k[len(head):]: json.loads(v) for k, v in setting.items() if k.startswith(head)}
    return json.dumps(sub, sort_keys=True) if sub else None


def _shown(value: str | None, key: str = "") -> str:
    if value is None:  # a run's own tests beside its re-tests kept what it was trained with
        return "as trained" if key.startswith(RETEST_PREFIX) else "unset"
    try:
        loaded = json.loads(value)
    except json.JSONDecodeError:
        return value
    return loaded if isinstance(loaded, str) else json.dumps(loaded)


def summary_rows(groups: Sequence[RunGroup]) -> list[dict]:
    """Plain data of each group (JSON-ready; NaN standard deviations become None)."""
    rows = []
    for g in groups:
        stats = g.stats()
        for per_metric in stats.values():
            for s in per_metric.values():
                s["std"] = None if np.isnan(s["std"]) else s["std"]
        rows.append({"label": g.label, "dataset": g.dataset, "regime": g.regime, "folds": g.folds,
                     "runs": [str(r.path) for r in g.runs], "metrics": stats,
                     "validation_ua": g.validation_ua()})
    return rows
