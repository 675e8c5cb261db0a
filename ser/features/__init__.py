"""Spectrogram images made batched on the training device."""
