"""Test sets as config entries: each entry of ``data.test_sets`` names a kind, a function that
makes named test sets from the fold's data (its ``_target_``), and the data module tests all of
them. The two built in:

* :func:`noisy_copies`: the held-out speakers' blocks clean and at each of ``data.test_snrs``,
  mixed with the test-only noise, fixed per block (``clean``, ``0dB`` ...);
* :func:`other_corpora`: every ``+data.test_corpora`` entry whole, relabelled into the run's
  classes, clean and at the same SNRs (``urdu/clean``, ``urdu/0dB`` ...).

A new kind (reverberation, a codec, a telephone band) is one function in its own file and one
entry, e.g. ``+data.test_sets.phone={_target_: mypackage.phone_band}``: it receives the set-up
data module as ``data`` plus its entry's keys and returns :class:`TestSet` objects, each naming
itself, the corpus it comes from and the condition of its audio. The run records those (run.json
``test_sets``), and reports read them instead of parsing names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch.utils.data import Dataset

from ser.data.blocks import BlockTable
from ser.data.snr_levels import snr_name
from ser.set_names import corpus_set_name

# ``data`` below is the set-up :class:`ser.data.datamodule.EmotionDataModule` (named, not
# imported: the data module imports this module).

# Noise-draw streams of the test sets: each test corpus draws its own test noise.
TEST_STREAM = 3
CROSS_CORPUS_STREAM = 100  # + the entry's index


@dataclass(frozen=True)
class TestSet:
    """One test set: ``name`` (unique in a run; the key of metrics.json and predictions.csv),
    ``corpus`` (None for the run's own held-out speakers, else the other corpus's name),
    ``condition`` (what was done to the audio: ``clean``, ``0dB``, ``phone`` ...), the dataset
    the test loop reads (items as :class:`ser.data.block_dataset.BlockNoiseDataset` gives them)
    and the block table its items' ``utterance``/``block`` index."""

    name: str
    corpus: str | None
    condition: str
    dataset: Dataset
    blocks: BlockTable

    def record(self) -> dict[str, Any]:
        """What run.json keeps of it (``test_sets``): the name, corpus and condition."""
        return {"name": self.name, "corpus": self.corpus, "condition": self.condition}


class TestSetKind(Protocol):
    """A ``data.test_sets`` entry's ``_target_``: ``(data, **its keys) -> [TestSet, ...]``."""

    def __call__(self, data: "EmotionDataModule", **keys: Any) -> list[TestSet]: ...


def noisy_copies(data: "EmotionDataModule") -> list[TestSet]:
    """The held-out speakers' test blocks clean and at each of ``data.test_snrs`` dB."""
    return [TestSet(snr_name(snr), None, snr_name(snr),
                    data.noisy_dataset(data.test_idx, snr, TEST_STREAM), data.blocks)
            for snr in data.test_conditions]


def other_corpora(data: "EmotionDataModule") -> list[TestSet]:
    """Every ``data.test_corpora`` entry whole (the speech gate's blocks, if one is set), clean
    and at each of ``data.test_snrs`` dB, each corpus with its own noise draws."""
    return [TestSet(corpus_set_name(corpus.name, snr_name(snr)), corpus.name, snr_name(snr),
                    data.noisy_dataset(data.corpus_test_idx(corpus), snr, CROSS_CORPUS_STREAM + k,
                                       corpus=corpus), corpus.blocks)
            for k, corpus in enumerate(data.test_corpora) for snr in data.test_conditions]
