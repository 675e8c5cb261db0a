"""Test corpora beside the run's own: every utterance of another corpus, at every test SNR.

``data.test_corpora`` lists them, e.g.::

    data.test_corpora='[{name: urdu, manifest: /data/urdu/manifest.csv, label_map: {angry: anger}}]'

A corpus the model never trained on, from other speakers, microphones and often another
language, tests what a speaker-independent fold of one corpus cannot: whether the model learnt
emotion or the corpus. Its labels are mapped into the run's classes (``label_map`` renames;
labels that match no class after it are left out and counted); its blocks are cut exactly as the
run's corpus (same sample rate, block length, padding) and mixed with the run's test noise at
the run's test SNRs. Test sets are named ``<name>/clean``, ``<name>/0dB`` ...
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ser.configs import build
from ser.data.blocks import BlockTable, build_blocks
from ser.data.manifest import canonical_label, read_manifest
from ser.errors import SerError


@dataclass
class TestCorpus:
    """Another corpus's blocks with labels as class ids of the run (``blocks.classes`` is the
    run's class list); ``dropped`` counts utterances per original label left out."""

    name: str
    blocks: BlockTable
    label_map: dict[str, str]
    dropped: dict[str, int]

    def describe(self) -> str:
        counts = np.bincount(self.blocks.labels, minlength=len(self.blocks.classes))
        have = ", ".join(f"{c} {n}" for c, n in zip(self.blocks.classes, counts) if n)
        speakers = len({u.speaker for u in self.blocks.table.utterances})
        text = (f"Test corpus {self.name}: {len(self.blocks.table)} utterances from {speakers} "
                f"speaker(s), {len(self.blocks)} blocks ({have})")
        if self.label_map:
            text += "; labels mapped " + ", ".join(f"{a}->{b}" for a, b in self.label_map.items())
        if self.dropped:
            text += "; left out: " + ", ".join(f"{n} {lab}" for lab, n in self.dropped.items())
        return text + "."


# Keys of an entry that are not its reader's arguments.
ENTRY_KEYS = ("name", "label_map")


def _spec(entry: Any, index: int) -> dict:
    spec = OmegaConf.to_container(entry, resolve=True) if isinstance(entry, DictConfig) else entry
    if not isinstance(spec, Mapping) or not (spec.get("manifest") or spec.get("_target_")):
        raise SerError(f"data.test_corpora[{index}] = {spec!r}: each entry needs a manifest (a CSV "
                       "with columns path,label and optional speaker) or a reader as a dataset "
                       "config names it (_target_: ... and its keys, as in conf/dataset/), plus an "
                       "optional name and label_map, e.g. "
                       "{name: urdu, manifest: /data/urdu/manifest.csv, label_map: {angry: anger}}.")
    return dict(spec)


def _read(spec: dict, index: int):
    if spec.get("manifest") and not spec.get("_target_"):
        return read_manifest(spec["manifest"], classes=None, name=spec.get("name"))
    return build({k: v for k, v in spec.items() if k not in ENTRY_KEYS})


def load_test_corpus(entry: Any, index: int, classes: Sequence[str], sample_rate: int,
                     block_seconds: float, pad_min_fraction: float | None = None,
                     cache_dir: str | None = None, progress: bool = False) -> TestCorpus:
    """Read, relabel and cut one ``data.test_corpora`` entry into the run's ``classes``."""
    spec = _spec(entry, index)
    label_map = {canonical_label(str(k)): canonical_label(str(v))
                 for k, v in (spec.get("label_map") or {}).items()}
    unknown = sorted(set(label_map.values()) - set(classes))
    if unknown:
        raise SerError(f"data.test_corpora[{index}].label_map maps onto {unknown}, which the model "
                       f"does not have: its classes are {list(classes)}. Map each label of the test "
                       "corpus onto one of those (labels mapped to no class are left out).")
    table = _read(spec, index)
    name = str(spec.get("name") or table.name)
    kept, dropped = [], Counter()
    for u in table.utterances:
        label = label_map.get(canonical_label(u.label), canonical_label(u.label))
        if label in classes:
            kept.append(dataclasses.replace(u, label=label))
        else:
            dropped[u.label] += 1
    if not kept:
        raise SerError(f"Test corpus {name} has no utterance of the run's classes {list(classes)} "
                       f"(its labels: {sorted({u.label for u in table.utterances})}). Give "
                       f"data.test_corpora[{index}].label_map, e.g. {{angry: anger}}.")
    present = [c for c in classes if any(u.label == c for u in kept)]
    cut = build_blocks(dataclasses.replace(table, name=name, classes=present, utterances=kept),
                       sample_rate=sample_rate, block_seconds=block_seconds,
                       pad_min_fraction=pad_min_fraction, cache_dir=cache_dir, progress=progress)
    to_run = np.array([list(classes).index(c) for c in present], dtype=np.int64)
    blocks = dataclasses.replace(cut, labels=to_run[cut.labels],
                                 table=dataclasses.replace(cut.table, classes=list(classes)))
    return TestCorpus(name=name, blocks=blocks, label_map=label_map, dropped=dict(dropped))


def load_test_corpora(entries: Sequence[Any] | None, classes: Sequence[str], own_name: str,
                      **cut) -> list[TestCorpus]:
    """Every ``data.test_corpora`` entry; names must be unique and differ from the run's corpus."""
    corpora = [load_test_corpus(e, i, classes, **cut) for i, e in enumerate(entries or [])]
    names = [c.name for c in corpora]
    clash = sorted({n for n in names if names.count(n) > 1 or n == own_name})
    if clash:
        raise SerError(f"data.test_corpora names {clash} more than once or as the run's own corpus: "
                       "give each entry a distinct name: (it prefixes its test sets, <name>/clean).")
    return corpora
