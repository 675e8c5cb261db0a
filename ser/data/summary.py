"""The setup summary: counts per class laid out like the paper's Tables 2 and 3."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _fmt(n: int) -> str:
    return f"{n:,}"


def class_count_table(classes: Sequence[str], utterances: np.ndarray, blocks: np.ndarray,
                      parts: dict[str, np.ndarray], training_copies: int,
                      left_out: np.ndarray | None = None) -> str:
    """Rows per class: utterances, blocks, blocks per split part and training examples.

    ``left_out`` (per-class counts; a speech gate, ``data.min_speech``) adds a column of the
    blocks left out for too little speech; the parts then count the blocks kept.
    ``utterances`` and ``blocks`` are per-class counts; ``parts`` maps a part name (train,
    validation, test) to its per-class block counts; ``training_copies`` is 1 + the number of
    noisy copies of each training block (the paper's "overall generated spectrograms").
    """
    gate = {} if left_out is None else {"No speech": np.asarray(left_out)}
    header = ["Emotion", "Utterances", "Blocks", *gate, *parts, "Training examples"]
    rows = []
    for c, name in enumerate(classes):
        rows.append([name, _fmt(int(utterances[c])), _fmt(int(blocks[c])),
                     *(_fmt(int(v[c])) for v in gate.values()),
                     *(_fmt(int(v[c])) for v in parts.values()),
                     _fmt(int(parts["train"][c]) * training_copies if "train" in parts else 0)])
    total = ["Total", _fmt(int(utterances.sum())), _fmt(int(blocks.sum())),
             *(_fmt(int(v.sum())) for v in gate.values()),
             *(_fmt(int(v.sum())) for v in parts.values()),
             _fmt(int(parts["train"].sum()) * training_copies if "train" in parts else 0)]
    rows.append(total)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)  # noqa: E731
                               for i, (v, w) in enumerate(zip(r, widths)))
    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])])
