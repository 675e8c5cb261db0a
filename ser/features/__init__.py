"""Front-ends, waveform blocks -> network input, made batched on the training device: log-mel
images, the paper's jet spectrogram image, normalised waveforms; and SpecAugment."""
