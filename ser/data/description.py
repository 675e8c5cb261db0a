"""What a set-up data module prints about itself: the corpus, the fold, the training SNRs,
the class counts of every part, whose voices validate, the test sets and the noise, and every
file or block left out. A mixin of :class:`ser.data.datamodule.EmotionDataModule`, kept apart
because it only reads what ``setup`` made: the words a person checks a run by, not the data.
"""

from __future__ import annotations

import numpy as np

from ser.data.block_dataset import CLEAN
from ser.data.splits import SPLIT_CAVEAT
from ser.data.summary import class_count_table


class DataDescription:
    """:meth:`describe` of :class:`~ser.data.datamodule.EmotionDataModule`.

    The host provides what its ``setup`` makes (``blocks``, ``table``, ``plan``, the part
    indices, the banks, the gate and the test corpora), its settings and :meth:`noisy_dataset`,
    :meth:`utterance_speakers` and :attr:`test_set_names`.
    """

    def _snr_words(self) -> str:
        if not self.train_snrs:
            return "clean only"
        return ", ".join(f"{s:g} dB" for s in self.train_snrs)

    def _window_words(self) -> str:
        if self.test_hop is None:
            return ""
        n = len(self.noisy_dataset(self.test_idx, CLEAN, 0)) - len(self.test_idx)
        return (f", + {n} windows every {self.test_hop:g} block between them for the utterance "
                "votes")

    def _validation_words(self) -> str:
        """Whose voices validate: the score that picks the checkpoint and every setting; and
        how images are normalised (data.speaker_norm)."""
        norm = {"speaker": " Images normalised by each speaker's band statistics per part and SNR "
                           "copy (test speakers: from their own unlabelled test blocks).",
                "utterance": " Images normalised by each recording's own band statistics per SNR "
                             "copy."}.get(self.speaker_norm or "", "")
        return self._whose_validation() + norm

    def _whose_validation(self) -> str:
        speakers = self.utterance_speakers()
        who = lambda idx: {speakers[u] for u in set(self.blocks.utterance[idx].tolist())}  # noqa: E731
        val, train = who(self.val_idx), who(self.train_idx)
        if getattr(self.plan, "validation", "utterances") == "speakers":
            return (f"Validation: {len(val)} speakers held out from training and test "
                    f"({len(train)} train): scores on unseen voices, as the test does.")
        return (f"Validation: utterances of the training speakers ({len(val & train)} of {len(val)} "
                "validation speakers also train): it measures known voices, and scores higher than "
                "a test on new speakers.")

    def describe(self) -> str:
        b, t = self.blocks, self.table
        n = len(b.classes)
        utt_per_class = np.bincount([b.classes.index(u.label) for u in t.utterances
                                     if u.label in b.classes], minlength=n)
        count = lambda idx: np.bincount(b.labels[idx], minlength=n)  # noqa: E731
        parts = {"train": count(self.train_idx), "validation": count(self.val_idx),
                 "test": count(self.test_idx)}
        lines = [f"Corpus {t.name}: {len(t)} utterances, {len(b.labels)} blocks of "
                 f"{self.block_seconds:g} s; split={self.plan.name} fold {self.fold} of "
                 f"{len(self.plan.folds)}; training SNRs: "
                 f"{self._snr_words()}"
                 f" (noise {'fixed once' if self.noise_cfg.get('fixed') else 'drawn afresh each epoch'}).",
                 class_count_table(b.classes, utt_per_class, count(slice(None)), parts,
                                   1 + len(self.train_snrs),
                                   left_out=None if self.gate is None else self.gate.dropped_per_class()),
                 self._validation_words(),
                 f"Test sets: {', '.join(self.test_set_names)} ({len(self.test_idx)} blocks each"
                 f"{self._window_words()}). "
                 f"Noise: {self.train_bank.describe()} (train)"
                 + ("" if self.val_bank is self.train_bank else f" / {self.val_bank.describe()} (validation)")
                 + f" / {self.test_bank.describe()} (test)."]
        for corpus in self.train_corpora:
            lines.append(f"Also trained on {corpus.name}: {len(corpus.blocks.table)} utterances, "
                         f"{len(corpus.blocks)} blocks ({', '.join(f'{c} {n}' for c, n in corpus.blocks.block_counts().items() if n)})"
                         " in every fold's training part (counted above).")
        missing = getattr(t, "missing", [])
        if missing:
            lines.append(f"Missing {len(missing)} audio file(s) listed by the corpus: "
                         f"{'; '.join(map(str, missing[:3]))}{' ...' if len(missing) > 3 else ''}")
        if b.skipped:
            first = "; ".join(f"{p} ({why})" for p, why in b.skipped[:3])
            lines.append(f"Skipped {len(b.skipped)} file(s): {first}{' ...' if len(b.skipped) > 3 else ''}")
        if self.gate is not None:
            lines.append(self.gate.describe())
        if self.snr_reference == "active":
            lines.append("SNR against active speech (noise.snr_reference=active): each block's speech "
                         "level is measured over the samples the detector calls speech.")
        lines += [c.describe() for c in self.test_corpora]
        lines += [f"Test corpus {name}: {g.describe()}" for name, g in self.corpus_gates.items()]
        if self.plan.name == "paper":
            lines.append("Note: " + SPLIT_CAVEAT)
        return "\n".join(lines)
