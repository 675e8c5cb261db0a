"""The last step of the paper's image pipeline: ImageNet normalisation of the jet images.

Kept apart from :mod:`ser.features.spectrogram` (which chains the steps) so each step has its
own module, as :mod:`ser.features.stft`, :mod:`ser.features.colour` and
:mod:`ser.features.resize` do.
"""

from __future__ import annotations

import sys
from typing import Sequence

import torch
from torch import nn


class ImageNormalize(nn.Module):
    """Image -> ImageNet-normalised float: (B, C, H, W) -> (B, 3, H, W).

    uint8 input (0–255; an alpha channel is dropped) is read as ``value / 255`` like
    ``ToTensor``; float input is taken to be in [0, 1]. ``out`` lets the caller write into a
    slice of a bigger batch without a copy.
    """

    def __init__(self, mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225)) -> None:
        super().__init__()
        mean_t = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.channels = mean_t.shape[1]
        # (x / 255 - mean) / std == x · gain + offset: one multiply-add per value.
        self.register_buffer("gain", (1.0 / std_t).float(), persistent=False)
        self.register_buffer("byte_gain", (1.0 / (255.0 * std_t)).float(), persistent=False)
        self.register_buffer("offset", (-mean_t / std_t).float(), persistent=False)

    def _output(self, image: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        if out is not None:
            return out
        return torch.empty((image.shape[0], self.channels, *image.shape[2:]),
                           dtype=torch.float32, device=image.device)

    def forward(self, image: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        out = self._output(image, out)
        gain = self.byte_gain if image.dtype == torch.uint8 else self.gain
        # Convert first, then scale in place: several times faster on the CPU than one
        # mixed-dtype multiply-add reading the interleaved RGBA bytes.
        out.copy_(image[:, : self.channels])
        return out.mul_(gain).add_(self.offset)

    def from_rgba_words(self, words: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Same result from RGBA pixels packed as int32 words (B, H, W), unpacked by shifts.

        Meant for ``torch.compile``, which turns it into one pass writing planar channels
        (eagerly, :meth:`forward` on the byte view is faster). Little-endian byte order.
        """
        out = self._output(words.unsqueeze(1), out)
        for channel in range(self.channels):
            shift = 8 * channel if sys.byteorder == "little" else 24 - 8 * channel
            value = ((words >> shift) & 255).float()
            out[:, channel] = value * self.byte_gain[0, channel] + self.offset[0, channel]
        return out
