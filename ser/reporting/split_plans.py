"""Whether a sweep's runs split the same data the same way, before any of them is averaged.

Every run records ``split_plan`` (run.json), a digest of every fold's blocks and of the corpus
table; the runs of a group (its folds), and the runs of one corpus, split and seed in any group,
must agree on it or, where the digests differ only because the corpus files were copied, on
their split.csv files (:func:`same_partitions`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ser.errors import SerError
from ser.run_layout import SPLIT_FILE

if TYPE_CHECKING:
    from ser.reporting.sweep_summary import FinishedRun, RunGroup


def check_split_plans(groups: Sequence[RunGroup]) -> None:
    """Refuse a summary whose folds are not comparable: the runs of a group (its folds), and runs
    of one corpus with one split and seed in any group, must share one split plan (``split_plan``
    in run.json, a digest of every fold's blocks; runs from before it was recorded are not
    checked). A corpus that changed between runs, or a split rule that changed between versions
    of ser, would otherwise be averaged as if its folds were the same."""
    families: dict[tuple, list[FinishedRun]] = {}
    for group in groups:
        _same_plan(group.runs, f"group {group.label or group.dataset}")
        for run in group.runs:
            r = run.record
            key = (r.get("dataset"), r.get("split"), r.get("seed"),
                   (r.get("data_fingerprint") or {}).get("table_hash"))
            families.setdefault(key, []).append(run)
    for (dataset, split, seed, _), runs in families.items():
        _same_plan(runs, f"dataset={dataset} split={split} seed={seed}")


def _same_plan(runs: Sequence[FinishedRun], what: str) -> None:
    plans: dict[str, list[Path]] = {}
    for run in runs:
        if run.record.get("split_plan"):
            plans.setdefault(str(run.record["split_plan"]), []).append(run.path)
    if len(plans) > 1 and not same_partitions([r for r in runs if r.record.get("split_plan")]):
        shown = "; ".join(f"plan {d}: {', '.join(str(p) for p in paths[:2])}"
                          + (" ..." if len(paths) > 2 else "") for d, paths in plans.items())
        raise SerError(f"The runs of {what} used different split plans ({shown}), so their folds "
                       "are not the same partitions of the same data and cannot be averaged or "
                       "compared. Compare the runs' split.csv files to see which utterances "
                       "differ (the corpus changed, or the runs come from different versions of "
                       "ser); summarise them as separate sweeps (sweep=DIR for each), or retrain "
                       "the odd ones out.")


def same_partitions(runs: Sequence[FinishedRun]) -> bool:
    """Whether runs whose plan digests differ still split the same utterances the same way.

    The digest covers the corpus files' sizes and modification times (so that a re-encoded file
    counts as another corpus), and a copy of a corpus gets new times: its runs then differ in
    digest only. Their split.csv files decide: the same utterances with the same labels and
    block counts in every run, the same parts wherever two runs share a fold, and no utterance
    tested by two folds. A run without split.csv cannot be shown to agree."""
    corpus, folds, tested = None, {}, {}
    for run in runs:
        path = run.folder / SPLIT_FILE
        if not path.is_file():
            return False
        with path.open(newline="") as f:
            rows = [(r["id"], r["label"], r["blocks"], r["part"]) for r in csv.DictReader(f)]
        mine = sorted(row[:3] for row in rows)
        if corpus is None:
            corpus = mine
        elif mine != corpus:
            return False
        fold = run.record.get("fold")
        parts = sorted(rows)
        if folds.setdefault(fold, parts) != parts:
            return False
        tested[fold] = {row[0] for row in rows if row[3] == "test"}
    seen: set[str] = set()
    for ids in tested.values():
        if seen & ids:
            return False
        seen |= ids
    return True
