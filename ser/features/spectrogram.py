"""Spectrogram images of 1-s blocks, batched on the training device (SPEC §2 steps 4–7).

:class:`SpectrogramImage` is the pipeline training uses: the data module hands it raw (mixed)
blocks in ``on_after_batch_transfer`` and gets ImageNet-normalised images back, on the CPU or the
GPU, never touching disk. It is built from one module per step, each testable against the
paper's way of doing it (:mod:`ser.features.reference`):

    InfinityNorm -> StftDb -> JetColour -> Resize -> ImageNormalize
    (B, T) float -> (B, T) -> (B, 257, 259) [0, 1] -> (B, 4, 257, 259) uint8 RGBA
    -> (B, 4, 256, 256) uint8 -> (B, 3, 256, 256) float

Colouring into bytes and resizing bytes is both faster than float images and closer to the
reference, which also colours into bytes (imsave) and resizes bytes (PIL).
"""

from __future__ import annotations

import sys
from typing import Sequence

import torch
from torch import nn

from ser.features.colour import JetColour
from ser.features.resize import Resize
from ser.features.stft import InfinityNorm, StftDb


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


class SpectrogramImage(nn.Module):
    """Waveform blocks -> normalised spectrogram images: (B, T) float -> (B, 3, H, W) float.

    All numbers come from the config (defaults mirror ``conf/``): STFT ``n_fft``, ``win_length``,
    ``hop_length`` in samples, ``top_db`` and ``amin`` for the dB floor, ``image_size``
    (height, width) in pixels, ImageNet ``mean``/``std``, the matplotlib ``colormap``.
    ``sample_rate`` (Hz) is kept for axis labels; the image itself does not depend on it.

    ``chunk_size`` blocks are processed at a time on the CPU so that each chunk's intermediate
    images stay in cache (a GPU takes the whole batch at once). ``compile=True`` hands the
    element-wise stages (dB scaling + colour lookup, normalisation) to ``torch.compile``: about
    twice as fast on the CPU once compiled, but the first batch waits for the compiler.
    ``channels_last`` returns the images in channels-last memory order (same shape).
    The work always runs in float32, also under autocast.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, win_length: int = 256,
                 hop_length: int = 62, top_db: float = 80.0, amin: float = 1e-5,
                 image_size: Sequence[int] = (256, 256),
                 mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), colormap: str = "jet",
                 chunk_size: int = 16, compile: bool = False, channels_last: bool = False) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.chunk_size = max(1, int(chunk_size))
        self.channels_last = bool(channels_last)
        self.infinity_norm = InfinityNorm()
        self.stft_db = StftDb(n_fft, win_length, hop_length, top_db, amin)
        self.colour = JetColour(colormap)
        self.resize = Resize(self.image_size)
        self.normalise = ImageNormalize(mean, std)
        self.compiled = bool(compile)
        self._words = self._power_to_words
        self._finish = self._normalise_eager
        if self.compiled:
            self._words = torch.compile(self._power_to_words, dynamic=False)
            self._finish = torch.compile(self._normalise_words, dynamic=False)

    def _power_to_words(self, power: torch.Tensor) -> torch.Tensor:
        """Power (B, frames, F) -> RGBA pixel words (B, F, frames): the fusable part."""
        return self.colour.words(self.stft_db.scale(power))

    def _normalise_eager(self, rgba: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self.normalise(rgba, out=out)

    def _normalise_words(self, rgba: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        words = rgba.permute(0, 2, 3, 1).contiguous().view(torch.int32).squeeze(-1)
        return self.normalise.from_rgba_words(words, out=out)

    def rgba(self, blocks: torch.Tensor) -> torch.Tensor:
        """Blocks (B, T) -> resized RGBA bytes (B, 4, H, W), channels-last, before normalising."""
        power = self.stft_db.power(self.infinity_norm(blocks))
        return self.resize(JetColour.as_rgba(self._words(power)))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        if blocks.dim() != 2:
            raise ValueError(f"expected blocks of shape (B, T), got {tuple(blocks.shape)}")
        with torch.autocast(device_type=blocks.device.type, enabled=False):
            memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
            images = torch.empty((blocks.shape[0], self.normalise.channels, *self.image_size),
                                 dtype=torch.float32, device=blocks.device,
                                 memory_format=memory_format)
            step = self.chunk_size if blocks.device.type == "cpu" else max(1, blocks.shape[0])
            for start in range(0, blocks.shape[0], step):
                rgba = self.rgba(blocks[start:start + step])
                self._finish(rgba, images[start:start + step])
            return images
