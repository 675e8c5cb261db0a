"""The waveform itself as the network's input: ``features=waveform`` for speech encoders.

Self-supervised speech models (WavLM, HuBERT, wav2vec 2.0) learn their own front-end from
16 kHz samples, so the mixed block goes to them as it is. The one step they expect is the
normalisation their pre-training used: ``Wav2Vec2FeatureExtractor(do_normalize=True)`` scales
each utterance to zero mean and unit variance; here each 1-s block is, which also makes the
input independent of the block's gain, as the image front-ends are. Noise is mixed before this
step, on the device, exactly as for the images (:func:`ser.audio.mixing.mix_at_snr`).
"""

from __future__ import annotations

import torch
from torch import nn


class Waveform(nn.Module):
    """(B, T) mixed blocks -> (B, T) float32 blocks, each of zero mean and unit variance.

    ``sample_rate`` (Hz) is the rate the data module resamples the corpus to: the speech
    encoders were pre-trained at 16 kHz. ``normalize=false`` passes the samples unchanged (for
    checkpoints pre-trained on raw samples, e.g. WavLM Base+ whose feature extractor has
    ``do_normalize=false``; per-block scaling then still helps nothing, so it stays optional).
    ``eps`` keeps silent blocks finite.
    """

    image = False  # not a picture: image-only augmentations (SpecAugment) do not apply

    def __init__(self, sample_rate: int = 16000, normalize: bool = True, eps: float = 1e-7) -> None:
        super().__init__()
        self.sample_rate, self.normalize, self.eps = int(sample_rate), bool(normalize), float(eps)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = blocks.float()
        if not self.normalize:
            return x
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)
