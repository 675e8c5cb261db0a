"""predictions.csv: every test block's class probabilities, so later statistics need no network.

One row per test block and test set, written by every run (network or baseline) next to
metrics.json. Pooled metrics over folds, speaker bootstraps and paired tests
(:mod:`ser.reporting.pooled`) read these files only.

Columns: ``test_set`` (clean, 0dB, ...; a cross-corpus set is ``<corpus>/<snr>``), ``fold``,
``utterance`` (the corpus's utterance id), ``block`` (the block's position in its utterance,
0-based), ``speaker``, ``label`` (true class name), ``predicted`` (class name), then
``p_<class>`` per class in the run's class order (probabilities summing to 1).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.atomic import write_text_atomic
from ser.errors import SerError

FIXED_COLUMNS = ("test_set", "fold", "utterance", "block", "speaker", "label", "predicted")
PROBABILITY_PREFIX = "p_"


@dataclass
class Predictions:
    """Test predictions as columns: ``probs`` (N, C) float, the rest (N,) arrays of str/int."""

    classes: list[str]
    test_set: np.ndarray
    fold: np.ndarray
    utterance: np.ndarray
    block: np.ndarray
    speaker: np.ndarray
    label: np.ndarray       # class ids into ``classes``
    probs: np.ndarray
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    def select(self, mask: np.ndarray) -> "Predictions":
        return Predictions(self.classes, self.test_set[mask], self.fold[mask], self.utterance[mask],
                           self.block[mask], self.speaker[mask], self.label[mask], self.probs[mask])

    @staticmethod
    def concat(parts: Sequence["Predictions"]) -> "Predictions":
        if not parts:
            raise ValueError("no predictions to concatenate")
        classes = parts[0].classes
        for p in parts[1:]:
            if p.classes != classes:
                raise SerError(f"Predictions with different classes cannot be pooled: {classes} "
                               f"and {p.classes}.")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        return Predictions(classes, cat("test_set"), cat("fold"), cat("utterance"), cat("block"),
                           cat("speaker"), cat("label"), np.concatenate([p.probs for p in parts]))


def block_positions(blocks, block_index: np.ndarray) -> np.ndarray:
    """The position (0-based) of each block, given by global indices into ``blocks``, within
    its utterance: blocks of an utterance are stored together and in time order."""
    utt = np.asarray(blocks.utterance, dtype=np.int64)
    first = np.full(int(utt.max()) + 1 if len(utt) else 0, len(utt), dtype=np.int64)
    np.minimum.at(first, utt, np.arange(len(utt)))
    idx = np.asarray(block_index, dtype=np.int64)
    return idx - first[utt[idx]]


def test_set_predictions(datamodule, test_set: str, probs: np.ndarray, utterance: np.ndarray,
                         block: np.ndarray, label: np.ndarray, classes: Sequence[str] | None = None
                         ) -> Predictions:
    """One test set's predictions: ``probs`` (N, C) and the items' utterance indices, global
    block indices and class ids (N,), as the data module's loaders yield them."""
    blocks = datamodule.test_blocks(test_set) if hasattr(datamodule, "test_blocks") else datamodule.blocks
    utterances = blocks.table.utterances
    utt = np.asarray(utterance, dtype=np.int64)
    n = len(utt)
    return Predictions(
        classes=list(classes or datamodule.classes),
        test_set=np.full(n, test_set, dtype=object),
        fold=np.full(n, int(getattr(datamodule, "fold", 0)), dtype=np.int64),
        utterance=np.array([str(utterances[i].id) for i in utt], dtype=object),
        block=block_positions(blocks, np.asarray(block, dtype=np.int64)),
        speaker=np.array([str(utterances[i].speaker) for i in utt], dtype=object),
        label=np.asarray(label, dtype=np.int64),
        probs=np.asarray(probs, dtype=np.float64))


def run_predictions(datamodule, items: dict[str, tuple]) -> Predictions | None:
    """All test sets of a run as one :class:`Predictions`: ``items`` maps each test set's name
    to its (probs (N, C), labels, utterance indices, block indices), as a LightningModule's
    ``test_items`` holds them."""
    parts = [test_set_predictions(datamodule, name, probs, utt, block, target)
             for name, (probs, target, utt, block) in items.items()]
    return Predictions.concat(parts) if parts else None


def predictions_csv(pred: Predictions) -> str:
    """The CSV text of ``pred`` (probabilities to 6 decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *(PROBABILITY_PREFIX + c for c in pred.classes)])
    names = pred.classes
    for i in range(len(pred)):
        writer.writerow([pred.test_set[i], int(pred.fold[i]), pred.utterance[i], int(pred.block[i]),
                         pred.speaker[i], names[int(pred.label[i])], names[int(pred.predicted[i])],
                         *(f"{p:.6f}" for p in pred.probs[i])])
    return out.getvalue()


def write_predictions(path: str | Path, pred: Predictions) -> Path:
    """Write ``pred`` to ``path`` atomically (a killed run leaves no half file)."""
    return write_text_atomic(Path(path), predictions_csv(pred))


def read_predictions(path: str | Path) -> Predictions:
    """A predictions.csv back as :class:`Predictions`; one clear error if it is not one."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise SerError(f"Could not read the predictions file {path} ({exc.strerror}).") from None
    header = rows[0] if rows else []
    probs_cols = [h for h in header if h.startswith(PROBABILITY_PREFIX)]
    if tuple(header[:len(FIXED_COLUMNS)]) != FIXED_COLUMNS or not probs_cols:
        raise SerError(f"{path} is not a predictions file: expected the columns "
                       f"{', '.join(FIXED_COLUMNS)}, p_<class>..., found {', '.join(header[:9]) or 'nothing'}.")
    classes = [h[len(PROBABILITY_PREFIX):] for h in probs_cols]
    body = rows[1:]
    col = lambda k: [r[k] for r in body]  # noqa: E731
    index = {c: i for i, c in enumerate(classes)}
    try:
        label = np.array([index[v] for v in col(5)], dtype=np.int64)
        probs = np.array([[float(x) for x in r[len(FIXED_COLUMNS):]] for r in body],
                         dtype=np.float64).reshape(len(body), len(classes))
        return Predictions(classes, np.array(col(0), dtype=object), np.array(col(1), dtype=np.int64),
                           np.array(col(2), dtype=object), np.array(col(3), dtype=np.int64),
                           np.array(col(4), dtype=object), label, probs)
    except (KeyError, ValueError) as exc:
        raise SerError(f"{path}: a row does not parse ({exc}); the file is damaged. Re-run "
                       "evaluate.py ckpt=RUN to write it again.") from None
