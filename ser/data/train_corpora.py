"""Training on several corpora at once: other corpora's blocks added to every fold's training part.

``data.train_corpora`` lists them in the form of ``data.test_corpora``, e.g.::

    +data.train_corpora='[{name: urdu, manifest: /data/urdu/manifest.csv, label_map: {angry: anger}}]'

More voices, microphones and languages in training is the field's plainest remedy for a model
that learns its corpus's speakers. The run's own corpus is split into folds as before; each
listed corpus is read, relabelled into the run's classes and cut as a test corpus is
(:func:`ser.data.cross_corpus.load_test_corpus`), and all of its blocks join the training part
of every fold, mixed with the training noise like the rest. Validation and the test sets stay
the run's own corpus (and ``data.test_corpora``, which may not name a corpus trained on): the
scores still measure new speakers of the run's corpus. Its speakers are named
``<corpus>:<speaker>`` so they never meet the run's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ser.data.blocks import BlockTable
from ser.data.cross_corpus import TestCorpus, load_test_corpus
from ser.errors import SerError


def load_train_corpora(entries: Sequence[Any] | None, classes: Sequence[str], own_name: str,
                       tested: Sequence[str], **cut) -> list[TestCorpus]:
    """Every ``data.train_corpora`` entry, relabelled and cut into blocks (``cut``: sample_rate,
    block_seconds, pad_min_fraction, cache_dir, progress)."""
    corpora = [load_test_corpus(e, i, classes, **cut) for i, e in enumerate(entries or [])]
    names = [c.name for c in corpora]
    clash = sorted({n for n in names if names.count(n) > 1 or n == own_name or n in tested})
    if clash:
        raise SerError(f"data.train_corpora names {clash} twice, as the run's own corpus or as a "
                       "test corpus: a corpus trained on cannot test generalisation to new corpora. "
                       "Give each entry its own name, and drop it from data.test_corpora.")
    return corpora


def with_training_corpora(blocks: BlockTable, train_idx: np.ndarray,
                          corpora: Sequence[TestCorpus]) -> tuple[BlockTable, np.ndarray]:
    """(the run's blocks with every block of ``corpora`` appended, ``train_idx`` with the new
    blocks' indices added). Utterance ids and speakers of the added corpora follow the run's;
    the run's own blocks keep their indices, so the split's parts are unchanged."""
    if not corpora:
        return blocks, train_idx
    audio, labels, utterance = [blocks.audio], [blocks.labels], [blocks.utterance]
    utterances = list(blocks.table.utterances)
    skipped = list(blocks.skipped)
    for corpus in corpora:
        extra = corpus.blocks
        if extra.block_samples != blocks.block_samples:
            raise SerError(f"Training corpus {corpus.name} gives blocks of {extra.block_samples} "
                           f"samples, the run's corpus {blocks.block_samples}; this is a bug.")
        audio.append(extra.audio)
        labels.append(extra.labels)
        utterance.append(extra.utterance + len(utterances))
        utterances += [dataclasses.replace(u, speaker=f"{corpus.name}:{u.speaker}",
                                           session=f"{corpus.name}:{u.session}" if u.session else "")
                       for u in extra.table.utterances]
        skipped += extra.skipped
    first_new = len(blocks)
    merged = BlockTable(np.concatenate(audio), np.concatenate(labels), np.concatenate(utterance),
                        dataclasses.replace(blocks.table, utterances=utterances), skipped)
    added = np.arange(first_new, len(merged), dtype=np.asarray(train_idx).dtype)
    return merged, np.concatenate([np.asarray(train_idx), added])
