"""predictions.csv: every test block's class probabilities, so later statistics need no network.

One row per test block and test set, written by every run (network or baseline) next to
metrics.json. Pooled metrics over folds, speaker bootstraps and paired tests
(:mod:`ser.reporting.pooled`) read these files only.

Columns: ``test_set`` (clean, 0dB, ...; a cross-corpus set is ``<corpus>/<snr>``), ``fold``,
``utterance`` (the corpus's utterance id), ``block`` (the block's position in its utterance,
0-based), ``speaker``, ``label`` (true class name), ``predicted`` (class name), then
``p_<class>`` per class in the run's class order (probabilities summing to 1). Runs tested with
overlapping windows (``data.test_hop``) add an ``offset`` column after ``predicted``: seconds the
window starts after its block's start, 0 for the blocks themselves; block-level statistics keep
to the rows at 0, utterance votes count every row.
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
OFFSET_COLUMN = "offset"  # only in files of runs tested with windows
TEXT_COLUMN = "text"      # only in files of runs whose corpus names each utterance's text
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
    offset: np.ndarray | None = None  # (N,) s a window starts after its block; None: all 0
    extra: dict = field(default_factory=dict)
    text: np.ndarray | None = None    # (N,) what each item's utterance says; None: not known

    def __post_init__(self) -> None:
        if self.offset is None:
            self.offset = np.zeros(len(self.label), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def has_text(self) -> bool:
        return self.text is not None and bool(np.any(self.text != ""))

    @property
    def has_windows(self) -> bool:
        return bool(np.any(self.offset != 0))

    def grid(self) -> "Predictions":
        """The blocks alone, without the windows between them (block-level statistics)."""
        return self.select(self.offset == 0) if self.has_windows else self

    def select(self, mask: np.ndarray) -> "Predictions":
        return Predictions(self.classes, self.test_set[mask], self.fold[mask], self.utterance[mask],
                           self.block[mask], self.speaker[mask], self.label[mask], self.probs[mask],
                           self.offset[mask], text=None if self.text is None else self.text[mask])

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
        text = None
        if any(p.text is not None for p in parts):
            text = np.concatenate([p.text if p.text is not None else np.full(len(p), "", dtype=object)
                                   for p in parts])
        return Predictions(classes, cat("test_set"), cat("fold"), cat("utterance"), cat("block"),
                           cat("speaker"), cat("label"), np.concatenate([p.probs for p in parts]),
                           cat("offset"), text=text)


def block_positions(blocks, block_index: np.ndarray) -> np.ndarray:
    """The position (0-based) of each block, given by global indices into ``blocks``, within
    its utterance: blocks of an utterance are stored together and in time order."""
    utt = np.asarray(blocks.utterance, dtype=np.int64)
    first = np.full(int(utt.max()) + 1 if len(utt) else 0, len(utt), dtype=np.int64)
    np.minimum.at(first, utt, np.arange(len(utt)))
    idx = np.asarray(block_index, dtype=np.int64)
    return idx - first[utt[idx]]


def test_set_predictions(datamodule, test_set: str, probs: np.ndarray, utterance: np.ndarray,
                         block: np.ndarray, label: np.ndarray, classes: Sequence[str] | None = None,
                         offset: np.ndarray | None = None) -> Predictions:
    """One test set's predictions: ``probs`` (N, C) and the items' utterance indices, global
    block indices and class ids (N,), as the data module's loaders yield them; ``offset`` (N,)
    the samples each window starts after its block (None: all blocks)."""
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
        probs=np.asarray(probs, dtype=np.float64),
        offset=None if offset is None else
        np.asarray(offset, dtype=np.float64) / float(getattr(datamodule, "sample_rate", 16000)),
        text=np.array([str(getattr(utterances[i], "text", "")) for i in utt], dtype=object))


def run_predictions(datamodule, items: dict[str, tuple]) -> Predictions | None:
    """All test sets of a run as one :class:`Predictions`: ``items`` maps each test set's name
    to its (probs (N, C), labels, utterance indices, block indices[, window offsets in
    samples]), as a LightningModule's ``test_items`` holds them."""
    parts = [test_set_predictions(datamodule, name, cols[0], cols[2], cols[3], cols[1],
                                  offset=cols[4] if len(cols) > 4 else None)
             for name, cols in items.items()]
    return Predictions.concat(parts) if parts else None


def predictions_csv(pred: Predictions) -> str:
    """The CSV text of ``pred`` (probabilities to 6 decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    windows, texts = pred.has_windows, pred.has_text
    writer.writerow([*FIXED_COLUMNS, *([OFFSET_COLUMN] if windows else []),
                     *([TEXT_COLUMN] if texts else []), *(PROBABILITY_PREFIX + c for c in pred.classes)])
    names = pred.classes
    for i in range(len(pred)):
        writer.writerow([pred.test_set[i], int(pred.fold[i]), pred.utterance[i], int(pred.block[i]),
                         pred.speaker[i], names[int(pred.label[i])], names[int(pred.predicted[i])],
                         *([f"{pred.offset[i]:.4f}"] if windows else []),
                         *([pred.text[i]] if texts else []), *(f"{p:.6f}" for p in pred.probs[i])])
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
    windows = len(header) > len(FIXED_COLUMNS) and header[len(FIXED_COLUMNS)] == OFFSET_COLUMN
    texts = TEXT_COLUMN in header[len(FIXED_COLUMNS):len(FIXED_COLUMNS) + 2]
    first_p = len(FIXED_COLUMNS) + int(windows) + int(texts)
    body = rows[1:]
    col = lambda k: [r[k] for r in body]  # noqa: E731
    index = {c: i for i, c in enumerate(classes)}
    try:
        label = np.array([index[v] for v in col(5)], dtype=np.int64)
        probs = np.array([[float(x) for x in r[first_p:]] for r in body],
                         dtype=np.float64).reshape(len(body), len(classes))
        offset = np.array(col(len(FIXED_COLUMNS)), dtype=np.float64) if windows else None
        text = np.array(col(first_p - 1), dtype=object) if texts else None
        return Predictions(classes, np.array(col(0), dtype=object), np.array(col(1), dtype=np.int64),
                           np.array(col(2), dtype=object), np.array(col(3), dtype=np.int64),
                           np.array(col(4), dtype=object), label, probs, offset, text=text)
    except (KeyError, ValueError) as exc:
        raise SerError(f"{path}: a row does not parse ({exc}); the file is damaged. Re-run "
                       "evaluate.py ckpt=RUN to write it again.") from None
