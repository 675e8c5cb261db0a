"""split.csv: which utterances a run trained, validated and tested on, and the plan's digest.

Every run directory holds one, so a user can see which speakers a fold tested on and compare
folds across tools (the SVM baseline and the network share a fold exactly when their files
match). One row per utterance and part: under ``split=paper`` single blocks are split, so one
utterance can have rows in two or three parts, each with its own block count.
"""

from __future__ import annotations

import csv
import hashlib
import io

import numpy as np

from ser.data.blocks import BlockTable
from ser.data.splits import SplitPlan

COLUMNS = ("id", "path", "speaker", "session", "label", "part", "blocks")
PARTS = ("train", "validation", "test")


def split_csv(blocks: BlockTable, parts: dict[str, np.ndarray],
              extra: dict[str, BlockTable] | None = None) -> str:
    """The CSV text: ``parts`` maps train/validation/test to block indices into ``blocks``;
    ``extra`` adds rows of other corpora tested too, part ``test:<name>`` (every block)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    _rows(writer, blocks, {part: parts[part] for part in PARTS})
    for name, other in (extra or {}).items():
        _rows(writer, other, {f"test:{name}": np.arange(len(other))})
    return out.getvalue()


def _rows(writer, blocks: BlockTable, parts: dict[str, np.ndarray]) -> None:
    utterances = blocks.table.utterances
    for part in parts:
        owners, counts = np.unique(blocks.utterance[parts[part]], return_counts=True)
        for index, count in zip(owners, counts):
            u = utterances[int(index)]
            writer.writerow([u.id, u.path, u.speaker, u.session, u.label, part, int(count)])


def plan_digest(plan: SplitPlan, blocks: BlockTable) -> str:
    """A digest of every fold's train/validation/test blocks and of the corpus table: two runs
    share it exactly when they used the same folds of the same data (whatever their fold)."""
    digest = hashlib.sha1(f"{plan.name}|{blocks.table.fingerprint()}|{len(blocks)}".encode())
    for k, (train, val) in enumerate(plan.folds):
        for part in (train, val, plan.tests[k]):
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            digest.update(b"|")
    return digest.hexdigest()[:16]
