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
GATE_COLUMN = "no_speech_blocks"  # only with a speech gate (data.min_speech)
PARTS = ("train", "validation", "test")


def split_csv(blocks: BlockTable, parts: dict[str, np.ndarray],
              extra: dict[str, BlockTable] | None = None,
              ungated: dict[str, np.ndarray] | None = None) -> str:
    """The CSV text: ``parts`` maps train/validation/test to block indices into ``blocks``;
    ``extra`` adds rows of other corpora tested too, part ``test:<name>`` (every block, or the
    indices ``parts["test:<name>"]`` holds). With a speech gate, ``ungated`` maps each part to
    its blocks before the gate, and a last column counts the blocks each row's utterance lost."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS + ((GATE_COLUMN,) if ungated is not None else ()))
    _rows(writer, blocks, {part: parts[part] for part in PARTS}, ungated)
    for name, other in (extra or {}).items():
        key = f"test:{name}"
        every = np.arange(len(other))
        _rows(writer, other, {key: parts.get(key, every)},
              None if ungated is None else {key: ungated.get(key, every)})
    return out.getvalue()


def _rows(writer, blocks: BlockTable, parts: dict[str, np.ndarray],
          ungated: dict[str, np.ndarray] | None = None) -> None:
    utterances = blocks.table.utterances
    for part in parts:
        before = parts[part] if ungated is None else ungated[part]
        owners = np.unique(blocks.utterance[before])
        kept = np.bincount(blocks.utterance[parts[part]], minlength=len(utterances))
        total = np.bincount(blocks.utterance[before], minlength=len(utterances))
        for index in owners:
            u = utterances[int(index)]
            row = [u.id, u.path, u.speaker, u.session, u.label, part, int(kept[index])]
            writer.writerow(row + ([] if ungated is None else [int(total[index] - kept[index])]))


def plan_digest(plan: SplitPlan, blocks: BlockTable, keep: np.ndarray | None = None) -> str:
    """A digest of every fold's train/validation/test blocks and of the corpus table: two runs
    share it exactly when they used the same folds of the same data (whatever their fold).
    ``keep`` (a speech gate's (N,) bool) enters it too: a gated run's parts are other blocks."""
    digest = hashlib.sha1(f"{plan.name}|{blocks.table.fingerprint()}|{len(blocks)}".encode())
    for k, (train, val) in enumerate(plan.folds):
        for part in (train, val, plan.tests[k]):
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            digest.update(b"|")
    if keep is not None:
        digest.update(b"gate|" + np.packbits(np.asarray(keep, bool)).tobytes())
    return digest.hexdigest()[:16]
