"""Corpora, utterance tables, 1-second blocks, folds and the LightningDataModule."""
