"""The paper's steps 4–6 before colouring: infinity-norm normalisation and the dB image.

Both modules work on a batch of blocks on any device. The STFT gives
``librosa.stft(n_fft=512, win_length=256, hop_length=62, window="hamming", center=True,
pad_mode="constant")`` magnitudes, but cheaper:

* Frames are strided views of the padded signal; one multiply by the window writes the FFT
  input, with the window zero-padded to ``n_fft`` and centred as librosa does. On the CPU the
  padded signal, the windowed frames and the power live in reused per-thread buffers
  (:mod:`ser.features.scratch`).
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
from ser.features.scratch import Scratch, buffer


class InfinityNorm(nn.Module):
    """Divide each block by its largest absolute sample: (B, T) -> (B, T), float32.

    A silent block (all zeros) stays all zeros instead of becoming NaN.
    """

    @staticmethod
    def gains(blocks: torch.Tensor) -> torch.Tensor:
        """Per-block factor ``1 / peak`` (1 for a silent block): (B, T) -> (B, 1), float32.

        The training path multiplies by it while copying a block into the STFT's padded buffer,
        which saves a pass over the audio.
        """
        peak = blocks.abs().amax(dim=-1, keepdim=True).float()
        return torch.where(peak > 0, peak.reciprocal(), torch.ones_like(peak))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        return blocks.float() * self.gains(blocks)


def periodic_hamming(win_length: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The Hamming window librosa/scipy use for STFTs (``fftbins=True``): periodic, not
    symmetric, so that it tiles a frame grid evenly."""
    n = torch.arange(win_length, dtype=torch.float64)
    return (0.54 - 0.46 * torch.cos(2 * math.pi * n / win_length)).to(dtype)


def exporting() -> bool:
    """True while ``torch.onnx.export`` traces a module: steps whose running ops an exporter
    cannot follow (complex FFTs, numba kernels, uint8 resizing) switch to plain tensor ops then,
    so a front-end is exported as it is, with no copy of it to keep in step."""
    return bool(torch.onnx.is_in_onnx_export())


def dft_basis(n_fft: int, window: torch.Tensor, descending: bool = False) -> torch.Tensor:
    """Windowed real-DFT basis as conv1d weights: (2·F, 1, n_fft), F = n_fft // 2 + 1.

    Rows 0..F-1 give the real parts, F..2F-1 the imaginary parts of ``rfft(frame · window)``;
    ``window`` (length ``win_length`` <= n_fft) is zero-padded to ``n_fft`` and centred, as
    torch.stft and librosa do. ``descending`` orders the bins from the highest frequency down.
    """
    left = (n_fft - window.shape[0]) // 2
    full = torch.zeros(n_fft, dtype=torch.float64)
    full[left:left + window.shape[0]] = window.double()
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    if descending:
        k = k.flip(0)
    angle = 2.0 * math.pi * k[:, None] * n[None, :] / n_fft
    return torch.cat([torch.cos(angle) * full, -torch.sin(angle) * full]).float().unsqueeze(1)


class StftPower(nn.Module):
    """(B, T) blocks -> |STFT|² (B, n_fft // 2 + 1, frames) of centred frames (``pad_mode``
    ``reflect`` or ``constant``), bins ascending or (``descending``) highest first.

    Running, it is ``torch.stft``. Traced for ONNX it is a strided ``conv1d`` with a fixed
    windowed DFT basis (:func:`dft_basis`): exporters do not handle complex STFTs reliably, and a
    convolution is exact up to float32 rounding.
    """

    def __init__(self, n_fft: int, hop_length: int, window: torch.Tensor, pad_mode: str = "reflect",
                 descending: bool = False) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.pad_mode = int(n_fft), int(hop_length), pad_mode
        self.descending = bool(descending)
        self.register_buffer("window", window.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting():
            half = self.n_fft // 2
            padded = nn.functional.pad(x.unsqueeze(1), (half, half), mode=self.pad_mode)
            basis = dft_basis(self.n_fft, self.window, self.descending).to(x.device)
            spec = nn.functional.conv1d(padded, basis, stride=self.hop_length)   # (B, 2F, frames)
            bins = self.n_fft // 2 + 1
            re, im = spec[:, :bins], spec[:, bins:]
            return re * re + im * im
        spec = torch.stft(x, self.n_fft, self.hop_length, self.window.shape[0], self.window,
                          center=True, pad_mode=self.pad_mode, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return power.flip(1) if self.descending else power


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
        self.top_db_log = self.top_db * math.log(10.0) / 10.0  # top_db in natural-log power
        # librosa's window: periodic Hamming, zero-padded to n_fft, centred. Times (-1)^n, which
        # puts the bins in descending order (see the module docstring).
        left = (n_fft - win_length) // 2
        window = torch.zeros(n_fft, dtype=torch.float64)
        window[left:left + win_length] = periodic_hamming(win_length)
        self.window_span = (left, left + win_length)
        signs = 1.0 - 2.0 * (torch.arange(n_fft) % 2).double()
        self.register_buffer("window", (window * signs).float(), persistent=False)

    def frames(self, samples: int) -> int:
        """Number of STFT frames of a block of ``samples`` samples (librosa's count)."""
        return 1 + samples // self.hop_length

    def spectrum(self, blocks: torch.Tensor, scratch: Scratch | None = None,
                 gains: torch.Tensor | None = None) -> torch.Tensor:
        """Complex STFT, frame-major, frequency descending: (B, T) -> (B, frames, F) complex64.

        With ``scratch`` the FFT input lives in reused buffers. ``gains`` (B, 1) scales each
        block first (:meth:`InfinityNorm.gains`).
        """
        with torch.autocast(device_type=blocks.device.type, enabled=False):
            batch, samples = blocks.shape
            half, device = self.n_fft // 2, blocks.device
            # centre=True with zero padding: n_fft // 2 zeros each side (margins stay zero)
            padded = buffer(scratch, "padded", (batch, samples + 2 * half), device=device,
                            zero=True)
            if gains is None:
                padded[:, half:half + samples].copy_(blocks)
            else:
                torch.mul(blocks, gains, out=padded[:, half:half + samples])
            framed = padded.unfold(-1, self.n_fft, self.hop_length)
            # Only the window's win_length middle samples are non-zero: the rest of each FFT
            # input is zero (once, when the buffer is made) and is never written again.
            lo, hi = self.window_span
            windowed = buffer(scratch, "windowed", tuple(framed.shape), device=device, zero=True)
            torch.mul(framed[..., lo:hi], self.window[lo:hi], out=windowed[..., lo:hi])
            return torch.fft.rfft(windowed)

    def power(self, blocks: torch.Tensor, scratch: Scratch | None = None,
              gains: torch.Tensor | None = None) -> torch.Tensor:
        """``|STFT|^2`` in float32, in image orientation: (B, T) -> (B, F, frames), row 0 the
        highest frequency.

        ``power(y).flip(1)`` is librosa's ascending (F, frames) layout. With ``scratch`` the
        result lives in a reused buffer (valid until the next call).
        """
        # (rfft's result is fresh memory: squared in place rather than into another buffer)
        spectrum = self.spectrum(blocks, scratch, gains)
        squares = torch.view_as_real(spectrum).square_().transpose(1, 2)
        # The sum re² + im² is written transposed, frequency-major: reading across frames
        # costs this pass a little, and saves a separate transpose of the image later.
        power = buffer(scratch, "power", tuple(squares.shape[:-1]), device=blocks.device)
        return torch.add(squares[..., 0], squares[..., 1], out=power)

    def decibels(self, blocks: torch.Tensor) -> torch.Tensor:
        """dB relative to each block's maximum, floored at ``-top_db``: (B, T) -> (B, F, frames).

        ``librosa.amplitude_to_db(|S|, ref=np.max)`` in image orientation; for figures with a
        dB colour bar (the training path goes straight to the [0, 1] image, :meth:`scale`).
        """
        db = 10.0 * torch.log10(self.power(blocks).clamp_min(self.amin ** 2))
        db = db - db.amax(dim=(1, 2), keepdim=True)
        return db.clamp_min(-self.top_db)

    def _bounds(self, low: torch.Tensor, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-block (bottom, top) of the image in natural-log power from the log of its
        smallest and largest bin: the maximum, and the larger of the minimum and the
        ``top_db`` floor. Shapes (B,), (B,)."""
        return torch.maximum(low, top - self.top_db_log), top

    def power_bounds(self, power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_bounds` read off the power itself: log is monotone, so the extremes of the
        log are the logs of the extremes, and only 2 values per block need a log."""
        floor = self.amin ** 2
        low = power.amin(dim=(1, 2)).clamp_min_(floor).log_()
        top = power.amax(dim=(1, 2)).clamp_min_(floor).log_()
        return self._bounds(low, top)

    def scale(self, power: torch.Tensor) -> torch.Tensor:
        """Power (B, F, frames) -> [0, 1] dB image (B, F, frames), as imsave normalises it."""
        log_power = torch.log(power.clamp_min(self.amin ** 2))
        bottom, top = self._bounds(log_power.amin(dim=(1, 2)), log_power.amax(dim=(1, 2)))
        span = top - bottom
        # a constant image maps to 0 (matplotlib's Normalize with vmin == vmax)
        gain = torch.where(span > 0, 1.0 / span, torch.zeros_like(span)).view(-1, 1, 1)
        return (log_power - bottom.view(-1, 1, 1)).mul_(gain).clamp_(0.0, 1.0)

    def levels(self, power: torch.Tensor, levels: int, overwrite: bool = False,
               scratch: Scratch | None = None) -> torch.Tensor:
        """Power (B, F, frames) -> colour-table rows ``floor(levels · scale(power))`` clipped
        to ``levels - 1``, int32 (B, F, frames): what imsave looks up, in a few in-place sweeps.

        The dB conversion, the relative-to-maximum reference and the min–max scaling are all
        affine in log power, so they fold into one multiply-add per bin with per-block
        constants. ``overwrite=True`` lets it use ``power`` as scratch space.
        """
        bottom, top = self.power_bounds(power)
        span = top - bottom
        gain = torch.where(span > 0, levels / span, torch.zeros_like(span)).view(-1, 1, 1)
        work = power if overwrite else power.clone()
        log_power = work.clamp_min_(self.amin ** 2).log_()
        log_power.sub_(bottom.view(-1, 1, 1)).mul_(gain).clamp_(0.0, levels - 1)
        rows = buffer(scratch, "rows", tuple(power.shape), torch.int32, power.device)
        return rows.copy_(log_power)  # truncation == floor here (x >= 0)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=blocks.device.type, enabled=False):
            return self.scale(self.power(blocks))
