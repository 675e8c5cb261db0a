"""What each utterance says, and which texts cannot give the label away.

A corpus whose utterances name their text (a manifest's ``text`` column: a transcript or a
sentence id) may give some emotions their own sentences: ASED's sentences 03-07 use different
words for each emotion, 01-02 are spoken in every emotion. A network tested on new speakers who
read the same sentences can score by recognising the words. Two uses follow:

- validation logs ``val/ua_shared_text``, its UA on the blocks whose text is spoken in more than
  one class: a score the words cannot win (``select.monitor=val/ua_shared_text`` chooses by it);
- ``data.train_texts=shared`` trains only on those texts, so the network cannot learn the words
  that stand for a class and must learn how they are said (validation and test keep every text).
"""

from __future__ import annotations

import numpy as np

from ser.data.blocks import BlockTable
from ser.errors import SerError

TRAIN_TEXTS = ("all", "shared")


def shared_texts(labels: list[str], texts: list[str]) -> set[str]:
    """The non-empty texts that occur with at least two distinct labels."""
    seen: dict[str, set[str]] = {}
    for label, text in zip(labels, texts):
        if text:
            seen.setdefault(text, set()).add(label)
    return {t for t, found in seen.items() if len(found) >= 2}


def shared_text_blocks(blocks: BlockTable) -> np.ndarray | None:
    """(N blocks,) bool: the blocks whose utterance's text is spoken in more than one class of
    the corpus; None when the corpus names no texts or none is shared."""
    utterances = blocks.table.utterances
    texts = [getattr(u, "text", "") for u in utterances]
    shared = shared_texts([u.label for u in utterances], texts)
    if not shared:
        return None
    per_utterance = np.array([t in shared for t in texts], dtype=bool)
    return per_utterance[np.asarray(blocks.utterance, dtype=np.int64)]


def training_texts(train_idx: np.ndarray, blocks: BlockTable, train_texts: str) -> np.ndarray:
    """``train_idx`` (global block indices) kept to the texts ``data.train_texts`` names:
    ``all`` keeps every block; ``shared`` keeps the blocks whose text is spoken in more than one
    class, and refuses a corpus that names no such text."""
    if train_texts not in TRAIN_TEXTS:
        raise SerError(f"data.train_texts={train_texts!r}: use all (every utterance trains) or "
                       "shared (only utterances whose text is spoken in more than one class).")
    if train_texts == "all":
        return train_idx
    shared = shared_text_blocks(blocks)
    if shared is None:
        raise SerError(f"data.train_texts=shared needs a corpus whose utterances name their text "
                       f"with some text spoken in more than one class, and {blocks.table.name} "
                       "names none (add a `text` column to the manifest: a transcript or a "
                       "sentence id), or use data.train_texts=all.")
    kept = train_idx[shared[train_idx]]
    if not len(kept):
        raise SerError("data.train_texts=shared leaves this fold's training part empty: none of "
                       "its utterances says a text spoken in more than one class.")
    return kept
