"""The LightningDataModule: corpus -> blocks -> folds -> raw (block, noise, SNR) batches.

Images are not made here: the LightningModule mixes and renders batches on the device in
``on_after_batch_transfer``, so memory is bounded by the int16 audio, never by images.

How the config nodes become their builders' calls is :mod:`ser.data.node_builders`; what the
module prints about the data once set up, :mod:`ser.data.description`.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from ser.audio.noise import NoiseBank
from ser.configs import build, plain
from ser.data.block_dataset import CLEAN, BlockNoiseDataset, EpochSampler, balanced_weights
from ser.data.blocks import BlockTable, build_blocks
from ser.data.cross_corpus import TestCorpus, load_test_corpora
from ser.data.description import DataDescription
from ser.data.node_builders import (DATASET_META_KEYS, build_detector, build_from, build_noise_banks,
                                    noise_split_seed)
from ser.data.snr_levels import parse_snrs, training_snrs
from ser.data.speech_blocks import BlockGate, BlockSpeech, block_speech
from ser.data.splits import check_no_leak
from ser.data.test_sets import TestSet
from ser.data.texts import shared_text_blocks, training_texts
from ser.data.train_corpora import load_train_corpora, with_training_corpora
from ser.features.group_norm import grouping_setting
from ser.errors import SerError


# Noise-draw streams, so train, validation and test never share a generator state.
TRAIN_STREAM, VAL_STREAM, NOISE_SPLIT_STREAM = 1, 2, 4   # test sets: ser.data.test_sets
# The test sets when a config names none (runs saved before data.test_sets): the held-out
# speakers' noisy copies, then every data.test_corpora entry.
DEFAULT_TEST_SETS = {"noisy": {"_target_": "ser.data.test_sets.noisy_copies"},
                     "corpora": {"_target_": "ser.data.test_sets.other_corpora"}}


SNR_REFERENCES = ("block", "active")


class EmotionDataModule(DataDescription, pl.LightningDataModule):
    """Blocks of one corpus for one fold, with clean/noisy training copies and fixed test sets."""

    def __init__(self, dataset: DictConfig, noise: DictConfig, snr: str | float, split: DictConfig,
                 fold: int = 0, seed: int = 0, sample_rate: int = 16000, block_seconds: float = 1.0,
                 pad_min_fraction: float | None = None, all_snrs: list[float] = (15, 20, 40),
                 test_snrs: list[float] = (15, 20, 40), test_corpora: list | None = None,
                 batch_size: int = 128, num_workers: int | str = "auto",
                 balanced_sampling: bool = False, cache_dir: str | None = None, verbose: bool = True,
                 vad: DictConfig | None = None, min_speech: float | None = None,
                 test_hop: float | None = None, speaker_norm: str | None = None,
                 test_sets: dict | None = None, train_corpora: list | None = None,
                 train_texts: str = "all"):
        super().__init__()
        as_cfg = lambda c: c if isinstance(c, DictConfig) else OmegaConf.create(c)  # noqa: E731
        self.dataset_cfg, self.noise_cfg = as_cfg(dataset), as_cfg(noise)
        self.split_cfg = as_cfg(split)
        self.fold, self.seed = int(fold), int(seed)
        self.sample_rate, self.block_seconds = int(sample_rate), float(block_seconds)
        self.pad_min_fraction = pad_min_fraction
        self.train_snrs = training_snrs(snr, list(all_snrs))
        self.test_snrs = parse_snrs(test_snrs, "data.test_snrs")
        self.test_corpora_cfg = list(test_corpora or [])
        self.test_corpora: list[TestCorpus] = []
        self.train_corpora_cfg = list(train_corpora or [])   # other corpora every fold trains on too
        self.train_corpora: list[TestCorpus] = []
        self.train_texts = str(train_texts)   # all | shared: ser.data.texts
        self.batch_size, self.balanced_sampling = int(batch_size), bool(balanced_sampling)
        self.num_workers = num_workers
        self.cache_dir, self.verbose = cache_dir, verbose
        self.vad_cfg = None if vad is None else as_cfg(vad)
        self.min_speech = None if min_speech is None else float(min_speech)
        # test sets also hold windows every test_hop of a block between consecutive blocks:
        # more views for each utterance's vote (block metrics keep to the grid blocks)
        self.test_hop = None if test_hop is None else float(test_hop)
        self.calibration_snrs: tuple[float, ...] = ()   # set while a calibration layer is fitted
        # the network's images normalised per speaker or recording: the LightningModule does it,
        # from the run config; checked here so a typo fails before any data is read
        self.speaker_norm = grouping_setting(speaker_norm)
        # each entry a kind that makes named test sets from the fold (ser.data.test_sets)
        self.test_set_kinds = {str(k): dict(plain(v)) for k, v in (test_sets or DEFAULT_TEST_SETS).items()
                               if v is not None}
        self._test_sets: list[TestSet] | None = None
        self.snr_reference = str(self.noise_cfg.get("snr_reference") or "block")
        self.speech: BlockSpeech | None = None   # per-block speech, when a gate or SNR needs it
        self.gate: BlockGate | None = None       # the blocks data.min_speech keeps
        self.corpus_speech: dict[str, BlockSpeech] = {}
        self.corpus_gates: dict[str, BlockGate] = {}
        self.blocks: BlockTable | None = None

    # ----------------------------------------------------------------- setup
    @property
    def classes(self) -> list[str]:
        self._require_setup()
        return list(self.blocks.classes)

    @property
    def test_set_names(self) -> list[str]:
        """The names of :meth:`test_sets`, in order (the keys of metrics.json)."""
        return [t.name for t in self.test_sets()]

    @property
    def test_conditions(self) -> list[float]:
        """The SNRs of the noisy test copies, clean (inf) first: ``[inf, *data.test_snrs]``."""
        return [CLEAN, *self.test_snrs]

    def test_sets(self) -> list[TestSet]:
        """Every test set the ``data.test_sets`` kinds make from this fold, made once."""
        self._require_setup()
        if self._test_sets is None:
            made = [t for name, node in self.test_set_kinds.items()
                    for t in build({**node, "_recursive_": False}, data=self)]
            names = [t.name for t in made]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise SerError(f"data.test_sets make the test set(s) {', '.join(twice)} more than once "
                               f"(kinds: {', '.join(self.test_set_kinds)}); each test set needs its own "
                               "name. Give one kind other conditions, or drop one entry.")
            self._test_sets = made
        return self._test_sets

    def utterance_speakers(self, test_set: str | None = None) -> list[str]:
        """The speaker of each utterance of the table a part's ``utterance`` column indexes:
        the run's corpus (training, validation, own test sets; ``test_set`` None), or the other
        corpus a ``<corpus>/...`` test set comes from."""
        table = self.table if test_set is None else self.test_blocks(test_set).table
        return [u.speaker for u in table.utterances]

    def shared_text_blocks(self) -> np.ndarray | None:
        """(N blocks,) bool: blocks whose text is spoken in more than one class (validation logs
        its UA on them, ``val/ua_shared_text``); None when the corpus names no such text."""
        self._require_setup()
        return shared_text_blocks(self.blocks)

    def test_blocks(self, test_set: str) -> BlockTable:
        """The blocks a test set's items index (``utterance``, ``block``): the run's corpus, or
        the other corpus the test set comes from."""
        return next((t.blocks for t in self.test_sets() if t.name == test_set), self.blocks)

    @property
    def train_class_counts(self) -> np.ndarray:
        self._require_setup()
        return np.bincount(self.blocks.labels[self.train_idx], minlength=len(self.classes))

    def _require_setup(self) -> None:
        if self.blocks is None:
            raise RuntimeError("EmotionDataModule.setup() has not run yet")

    def setup(self, stage: str | None = None) -> None:
        if self.blocks is not None:
            return
        self.table = self._read_corpus()
        self.blocks = build_blocks(self.table, sample_rate=self.sample_rate,
                                   block_seconds=self.block_seconds,
                                   pad_min_fraction=self.pad_min_fraction, cache_dir=self.cache_dir,
                                   progress=self.verbose)
        noise_seed = noise_split_seed(self.seed, self.fold, bool(self.noise_cfg.get("per_fold", False)))
        self.train_bank, self.test_bank = build_noise_banks(self.noise_cfg, self.sample_rate,
                                                            noise_seed, self.cache_dir)
        self.val_bank = self.train_bank   # noise.validation_fraction 0: validation hears training noise
        held = float(self.noise_cfg.get("validation_fraction") or 0.0)
        if held:   # hold_out refuses a share outside (0, 1)
            self.train_bank, self.val_bank = self.train_bank.hold_out(held, noise_seed)
        b = self.blocks
        speakers = self.utterance_speakers()
        sessions = [u.session for u in self.table.utterances]
        self.plan = build_from("split", self.split_cfg, ("name",), labels=b.labels,
                               utterance=b.utterance, speakers=speakers, sessions=sessions,
                               seed=self.seed)
        self.train_idx, self.val_idx = self.plan.fold(self.fold)
        self.train_idx = training_texts(self.train_idx, b, self.train_texts)
        self.test_idx = self.plan.test_for(self.fold)
        self.test_corpora = load_test_corpora(
            self.test_corpora_cfg, b.classes, self.table.name, sample_rate=self.sample_rate,
            block_seconds=self.block_seconds, pad_min_fraction=self.pad_min_fraction,
            cache_dir=self.cache_dir, progress=self.verbose)
        self.train_corpora = load_train_corpora(
            self.train_corpora_cfg, b.classes, self.table.name, [c.name for c in self.test_corpora],
            sample_rate=self.sample_rate, block_seconds=self.block_seconds,
            pad_min_fraction=self.pad_min_fraction, cache_dir=self.cache_dir, progress=self.verbose)
        self.blocks, self.train_idx = with_training_corpora(b, self.train_idx, self.train_corpora)
        self.table = self.blocks.table
        self._setup_speech()
        check_no_leak(self.plan.name, self.train_idx, self.val_idx, self.test_idx, self.blocks.utterance,
                      self.utterance_speakers(), getattr(self.plan, "validation", "utterances"))
        if self.verbose:
            print(self.describe(), flush=True)

    def _setup_speech(self) -> None:
        """Per-block speech when ``data.min_speech`` or ``noise.snr_reference=active`` needs
        it; the gate removes blocks from the plan's parts (the plan itself is made on all
        blocks, so gated and ungated runs of a fold test the same utterances)."""
        if self.snr_reference not in SNR_REFERENCES:
            raise SerError(f"noise.snr_reference={self.snr_reference}: use block (the SNR of the "
                           "whole block, silence included, as the paper) or active (against the "
                           "speech the detector finds, as ITU-T P.56 measures speech level).")
        if self.min_speech is None and self.snr_reference == "block":
            return
        detector = build_detector(self.vad_cfg, self.sample_rate)
        if detector is None:
            wants = ("data.min_speech" if self.min_speech is not None else "noise.snr_reference=active")
            raise SerError(f"{wants} needs a speech-activity detector, and vad=none is chosen: add "
                           "vad=silero (pip install 'ser[vad]'), vad=webrtc or vad=energy.")
        settings = OmegaConf.to_container(self.vad_cfg, resolve=True)
        analyse = lambda blocks: block_speech(blocks, detector, settings, self.cache_dir,  # noqa: E731
                                              progress=self.verbose)
        self.speech = analyse(self.blocks)
        self.corpus_speech = {c.name: analyse(c.blocks) for c in self.test_corpora}
        if self.min_speech is None:
            return
        self.gate = BlockGate(self.blocks, self.speech, self.min_speech, detector.name)
        self.ungated = {"train": self.train_idx, "validation": self.val_idx, "test": self.test_idx}
        self.train_idx, self.val_idx, self.test_idx = (self.gate.gated(i) for i in self.ungated.values())
        self.corpus_gates = {c.name: BlockGate(c.blocks, self.corpus_speech[c.name], self.min_speech,
                                               detector.name) for c in self.test_corpora}

    def corpus_test_idx(self, corpus: TestCorpus) -> np.ndarray:
        """The blocks of a test corpus its test sets hold: all, or those the gate keeps."""
        every = np.arange(len(corpus.blocks))
        gate = self.corpus_gates.get(corpus.name)
        return every if gate is None else gate.gated(every)

    def _read_corpus(self):
        """The utterance table from the function ``dataset._target_`` names, called with the
        dataset's own keys (an old config's ``dataset.reader`` is lifted first)."""
        node = self.dataset_cfg
        if "root" in node and (OmegaConf.is_missing(node, "root") or node.root is None):
            raise SerError(f"dataset={node.name} needs the corpus location: add "
                           "dataset.root=/path/to/IEMOCAP_full_release (the folder that holds "
                           "Session1 ... Session5), or set the IEMOCAP_ROOT environment variable.")
        if "manifest" in node and (OmegaConf.is_missing(node, "manifest") or node.manifest is None):
            raise SerError("dataset=manifest needs a CSV file: add dataset.manifest=FILE.csv with "
                           "columns path,label and optional speaker,session.")
        return build_from("dataset", node, DATASET_META_KEYS)

    # ------------------------------------------------------------ datasets
    def _dataset(self, idx: np.ndarray, snrs: list[float], bank: NoiseBank, stream: int,
                 fixed: bool, same_noise: bool = False,
                 window_hop: float | None = None) -> BlockNoiseDataset:
        b = self.blocks
        return BlockNoiseDataset(b.audio, b.labels, b.utterance, idx, snrs, bank, self.seed,
                                 stream, fixed, same_noise,
                                 speech=self.speech if self.snr_reference == "active" else None,
                                 window_hop=window_hop)

    def train_dataset(self) -> BlockNoiseDataset:
        return self._dataset(self.train_idx, [CLEAN, *self.train_snrs], self.train_bank,
                             TRAIN_STREAM, bool(self.noise_cfg.get("fixed", False)))

    def val_dataset(self) -> BlockNoiseDataset:
        """The validation part: clean and at the training SNRs (plus, while a calibration layer
        is fitted, ``calibration_snrs``), noise fixed per block: the share of the training noise
        held out from training (``noise.validation_fraction``), else the training noise."""
        return self._dataset(self.val_idx, [CLEAN, *self.train_snrs, *self.calibration_snrs],
                             self.val_bank, VAL_STREAM, fixed=True)

    def noisy_dataset(self, idx: np.ndarray, snr: float, stream: int,
                      corpus: TestCorpus | None = None) -> BlockNoiseDataset:
        """A fixed test copy of blocks ``idx`` (of the run's corpus, or ``corpus``) at ``snr``
        dB (inf: clean) with the test-only noise: the same noise segment and SNR per block on
        every call (noise stream ``stream``), with windows every ``data.test_hop`` if set."""
        b = self.blocks if corpus is None else corpus.blocks
        speech = self.speech if corpus is None else self.corpus_speech.get(corpus.name)
        return BlockNoiseDataset(b.audio, b.labels, b.utterance, idx, [snr], self.test_bank, self.seed,
                                 stream, True, True,
                                 speech=speech if self.snr_reference == "active" else None,
                                 window_hop=self.test_hop)

    def test_datasets(self) -> list[BlockNoiseDataset]:
        return [t.dataset for t in self.test_sets()]

    def _loader(self, ds: BlockNoiseDataset, shuffle: bool, balanced: bool = False) -> DataLoader:
        workers = self.num_workers
        if workers == "auto":  # on a CPU the workers would compete with the model for cores
            workers = 4 if torch.cuda.is_available() else 0
        weights = balanced_weights(ds.item_labels) if balanced else None
        sampler = EpochSampler(len(ds), self.seed, shuffle, weights)
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=int(workers),
                          pin_memory=torch.cuda.is_available(), persistent_workers=int(workers) > 0)

    def train_dataloader(self) -> DataLoader:
        self._require_setup()
        return self._loader(self.train_dataset(), shuffle=True, balanced=self.balanced_sampling)

    def val_dataloader(self) -> DataLoader:
        self._require_setup()
        return self._loader(self.val_dataset(), shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        self._require_setup()
        return [self._loader(ds, shuffle=False) for ds in self.test_datasets()]
