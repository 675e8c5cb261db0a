"""Log-mel spectrograms of 1-s blocks, batched on the training device: ``features=logmel``.

The paper's front-end (:mod:`ser.features.spectrogram`) renders a linear-frequency spectrogram
through the jet colour map into a 256×256 RGB picture, so the ImageNet network sees colours that
encode loudness. A log-mel spectrogram gives the same backbones the perceptual frequency axis
speech models are built on, at a fraction of the pixels (128 bands × 101 frames instead of
256 × 256), which is what makes full fine-tuning affordable on a CPU.

    InfinityNorm -> |STFT|² -> mel filterbank -> dB (ref: block maximum, floor top_db below it)
    -> [-1, 1] -> (B, 3, n_mels, frames): the log-mel in every channel

Like the paper's pipeline it is invariant to the block's gain: each block is peak-normalised
and its dB scale is relative to its own maximum. Low frequencies are in the last row, as in a
picture of a spectrogram.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ser.features.stft import InfinityNorm, StftPower


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_MEL_HZ, _LOG_HZ, _LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
_LOG_MEL = _LOG_HZ / _MEL_HZ


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Frequencies in Hz -> Slaney mels (float64)."""
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(hz >= _LOG_HZ, _LOG_MEL + np.log(np.maximum(hz, _LOG_HZ) / _LOG_HZ) / _LOG_STEP,
                    hz / _MEL_HZ)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Slaney mels -> Hz (float64), the inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _LOG_MEL, _LOG_HZ * np.exp(_LOG_STEP * (mel - _LOG_MEL)), _MEL_HZ * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, area-normalised (Slaney): the same
    numbers as ``librosa.filters.mel`` with its defaults, which the tests check. Computed here
    so that building the front-end (as ``ser.predict`` does) does not import librosa, and with
    it scipy.signal and numba."""
    f_max = float(sample_rate) / 2 if f_max is None else float(f_max)
    bins = np.fft.rfftfreq(n=int(n_fft), d=1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), int(n_mels) + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    weights = np.zeros((int(n_mels), bins.size), dtype=np.float32)
    for i in range(int(n_mels)):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2:int(n_mels) + 2] - edges[:int(n_mels)]))[:, None]
    return weights


class LogMel(nn.Module):
    """(B, T) waveform blocks -> (B, 3, n_mels, frames) log-mel images in about [-1, 1].

    ``n_fft``/``win_length``/``hop_length`` in samples at ``sample_rate`` (Hz): the defaults are
    the usual 25 ms Hann window and 10 ms hop, 101 frames per second. ``top_db`` is the floor
    below each block's maximum (dB). ``image_size`` (H, W) resizes bilinearly when a backbone
    wants a fixed input; null keeps (n_mels, frames). ``channels_last`` returns channels-last
    memory order (same shape).
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = 128, f_min: float = 50.0,
                 f_max: float | None = None, top_db: float = 80.0, amin: float = 1e-10,
                 image_size: Sequence[int] | None = None, channels_last: bool = False) -> None:
        super().__init__()
        if win_length > n_fft:
            raise ValueError(f"features.win_length={win_length} exceeds features.n_fft={n_fft}")
        self.sample_rate, self.n_fft = int(sample_rate), int(n_fft)
        self.win_length, self.hop_length = int(win_length), int(hop_length)
        self.top_db, self.amin = float(top_db), float(amin)
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.channels_last = bool(channels_last)
        self.infinity_norm = InfinityNorm()
        mel = mel_filterbank(self.sample_rate, self.n_fft, int(n_mels), float(f_min), f_max)
        # flipped so that row 0 is the highest band: low frequencies at the bottom of the image
        self.register_buffer("mel", torch.from_numpy(np.ascontiguousarray(mel[::-1])).float(),
                             persistent=False)
        self.stft_power = StftPower(self.n_fft, self.hop_length,
                                    torch.hann_window(self.win_length, periodic=True), "reflect")

    @property
    def n_mels(self) -> int:
        return int(self.mel.shape[0])

    def power(self, blocks: torch.Tensor) -> torch.Tensor:
        """(B, T) -> |STFT|² (B, n_fft/2+1, frames) of the peak-normalised blocks."""
        return self.stft_power(self.infinity_norm(blocks.float()))

    def log_mel(self, blocks: torch.Tensor, power: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) -> (B, n_mels, frames) dB relative to each block's maximum, in [-top_db, 0]."""
        power = self.power(blocks) if power is None else power
        mel = torch.matmul(self.mel, power)                          # (B, n_mels, frames)
        db = 10.0 * torch.log10(mel.clamp(min=self.amin))
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db - peak, db.new_tensor(-self.top_db))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        if blocks.dim() != 2:
            raise ValueError(f"expected blocks of shape (B, T), got {tuple(blocks.shape)}")
        with torch.no_grad(), torch.autocast(device_type=blocks.device.type, enabled=False):
            half = self.top_db / 2.0
            power = self.power(blocks.detach())
            db = self.log_mel(blocks, power)
            base = (db + half) / half                                # [-1, 1]
            image = base.unsqueeze(1).expand(-1, 3, -1, -1)
            if self.image_size is not None and tuple(image.shape[-2:]) != self.image_size:
                image = nn.functional.interpolate(image, size=self.image_size, mode="bilinear",
                                                  align_corners=False)
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            return image.contiguous(memory_format=fmt)

    def picture(self, blocks: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, H, W, 3) uint8 grey pictures of the log-mel, for previews."""
        grey = ((self.log_mel(blocks) + self.top_db) / self.top_db * 255.0).round().to(torch.uint8)
        return grey.unsqueeze(-1).expand(-1, -1, -1, 3).contiguous()
