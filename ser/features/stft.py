"""SPEC §2 steps 4–6 before colouring: infinity-norm normalisation and the dB image.

Both modules work on a batch of blocks on any device. The STFT gives
``librosa.stft(n_fft=512, win_length=256, hop_length=62, window="hamming", center=True,
pad_mode="constant")`` magnitudes, but cheaper:

* librosa zero-pads the 256-sample window centred inside the 512-sample frame, so only the 256
  middle samples of each frame are non-zero. We cut 256-sample frames from the signal padded by
  ``n_fft // 2 - (n_fft - win_length) // 2`` zeros on the left and let the FFT zero-pad them to
  ``n_fft`` at the end. Moving the non-zero part within the frame only changes the phase of
  each bin, never its magnitude.
* Multiplying the window by (-1)^n shifts the spectrum by half the sampling rate, so the real
  FFT returns the bins in descending frequency: the rows come out "low frequencies at the
  bottom", as ``imsave(origin="lower")`` draws them, without a flip.
* The STFT always runs in float32, whatever autocast says: bf16 has too few mantissa bits for
  the quiet bins near the -80 dB floor.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ser.errors import SerError


class InfinityNorm(nn.Module):
    """Divide each block by its largest absolute sample: (B, T) -> (B, T), float32.

    A silent block (all zeros) stays all zeros instead of becoming NaN.
    """

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        blocks = blocks.float()
        peak = blocks.abs().amax(dim=-1, keepdim=True)
        return blocks / torch.where(peak > 0, peak, torch.ones_like(peak))


def periodic_hamming(win_length: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The Hamming window librosa/scipy use for STFTs (``fftbins=True``): periodic, not
    symmetric, so that it tiles a frame grid evenly."""
    n = torch.arange(win_length, dtype=torch.float64)
    return (0.54 - 0.46 * torch.cos(2 * math.pi * n / win_length)).to(dtype)


class StftDb(nn.Module):
    """Blocks -> dB spectrogram image scaled to [0, 1]: (B, T) -> (B, n_fft // 2 + 1, frames).

    Power ``|S|^2`` -> ``10·log10(max(power, amin^2))`` relative to each block's maximum,
    floored ``top_db`` below it (``librosa.amplitude_to_db(ref=np.max)``), then min–max scaled to
    [0, 1] per block as ``plt.imsave`` does before colouring. Row 0 holds the highest frequency
    (image orientation: low frequencies at the bottom). A 16,000-sample block with the defaults
    gives (B, 257, 259). A constant image (a silent block) maps to all zeros, as in imsave.
    """

    def __init__(self, n_fft: int = 512, win_length: int = 256, hop_length: int = 62,
                 top_db: float = 80.0, amin: float = 1e-5) -> None:
        super().__init__()
        if win_length > n_fft or n_fft % 2:
            raise SerError(f"The STFT needs an even n_fft of at least win_length; got n_fft="
                           f"{n_fft}, win_length={win_length}. Fix the spectrogram settings in "
                           "the features config (the paper uses n_fft=512, win_length=256).")
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.top_db, self.amin = float(top_db), float(amin)
        # librosa pads the signal by n_fft // 2 and centres the window in the frame at offset
        # (n_fft - win) // 2: the non-zero part of frame t starts at t·hop - pad.
        self.pad = n_fft // 2 - (n_fft - win_length) // 2
        # (-1)^n puts the bins in descending order (see module docstring); where the sign
        # pattern starts only flips the sign of a whole frame's spectrum.
        signs = 1.0 - 2.0 * (torch.arange(win_length) % 2).double()
        self.register_buffer("window", (periodic_hamming(win_length) * signs).float(),
                             persistent=False)

    def frames(self, samples: int) -> int:
        """Number of STFT frames of a block of ``samples`` samples (librosa's count)."""
        return 1 + samples // self.hop_length

    def power(self, blocks: torch.Tensor) -> torch.Tensor:
        """``|STFT|^2`` in float32, frame-major, frequency descending: (B, T) -> (B, frames, F).

        ``power(y).transpose(1, 2).flip(1)`` is librosa's ascending (F, frames) layout.
        """
        with torch.autocast(device_type=blocks.device.type, enabled=False):
            blocks = blocks.float()
            needed = (self.frames(blocks.shape[-1]) - 1) * self.hop_length + self.win_length
            padded = nn.functional.pad(blocks, (self.pad, needed - blocks.shape[-1] - self.pad))
            frames = padded.unfold(-1, self.win_length, self.hop_length) * self.window
            parts = torch.view_as_real(torch.fft.rfft(frames, n=self.n_fft))
            return parts[..., 0].square() + parts[..., 1].square()

    def decibels(self, blocks: torch.Tensor) -> torch.Tensor:
        """dB relative to each block's maximum, floored at ``-top_db``: (B, T) -> (B, F, frames).

        ``librosa.amplitude_to_db(|S|, ref=np.max)`` in image orientation; for figures with a
        dB colour bar (the training path goes straight to the [0, 1] image, :meth:`scale`).
        """
        power = self.power(blocks).transpose(1, 2)
        db = 10.0 * torch.log10(power.clamp_min(self.amin ** 2))
        db = db - db.amax(dim=(1, 2), keepdim=True)
        return db.clamp_min(-self.top_db).contiguous()

    def scale(self, power: torch.Tensor) -> torch.Tensor:
        """Power (B, frames, F) -> [0, 1] dB image (B, F, frames): the element-wise half."""
        # 10·log10 via the natural log: one transcendental per bin.
        log_power = torch.log(power.clamp_min(self.amin ** 2))
        if torch.compiler.is_compiling():
            db = (log_power * (10.0 / math.log(10.0))).transpose(1, 2).contiguous()
        else:  # eager: the transpose to image layout rides on the multiply's write
            batch, n_frames, n_freq = log_power.shape
            db = torch.empty((batch, n_freq, n_frames), dtype=log_power.dtype,
                             device=log_power.device)
            torch.mul(log_power.transpose(1, 2), 10.0 / math.log(10.0), out=db)
        top = db.amax(dim=(1, 2), keepdim=True)
        bottom = torch.maximum(db.amin(dim=(1, 2), keepdim=True), top - self.top_db)
        span = top - bottom
        # imsave maps a constant image to 0 (matplotlib's Normalize with vmin == vmax).
        inverse = torch.where(span > 0, 1.0 / span, torch.zeros_like(span))
        return ((db - bottom) * inverse).clamp_(0.0, 1.0)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=blocks.device.type, enabled=False):
            return self.scale(self.power(blocks))
