"""Noise mix-up at a target SNR (the paper's equation 1), batched on the training device.

``y = clean + λ·noise`` with ``λ = sqrt(P_clean / (P_noise · 10^(SNR/10)))`` and ``P`` the mean
power over the whole block, silence included (as the paper and audiomentations do), so the
measured block SNR equals the target exactly. Powers and λ are computed in float64 (float32
where the device has no float64) so that low-level blocks keep their precision whatever the
dtype of the audio.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _power_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def _mean_power(x: Tensor, dtype: torch.dtype) -> Tensor:
    """Mean power over the last axis (samples), in ``dtype``: (..., T) -> (...)."""
    return x.to(dtype).square().mean(dim=-1)


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: Tensor | float,
               silent_power: float = 0.0) -> Tensor:
    """Add ``noise`` to ``clean`` so that each block's SNR is ``snr_db``.

    clean, noise: (B, T) waveforms (any float dtype, same device; any leading shape works);
    snr_db: (B,) in dB, or a scalar. Returns (B, T) in ``clean``'s dtype.
    ``snr_db = +inf`` returns the clean block (λ = 0). A clean block whose mean power is at or
    below ``silent_power`` gets no noise (the equation would give λ = 0 anyway, but 0/0 must not
    become NaN), and so does a silent noise segment (λ would be infinite); the noise bank already
    redraws silent segments, so this only guards against NaN/inf. No host-device sync happens.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noise {tuple(noise.shape)} must have "
                         "the same shape (B, T).")
    dtype = _power_dtype(clean.device)
    snr = torch.as_tensor(snr_db, device=clean.device).to(dtype)
    snr = snr.expand(clean.shape[:-1])
    p_clean, p_noise = _mean_power(clean, dtype), _mean_power(noise, dtype)
    no_noise = torch.isposinf(snr) | (p_clean <= silent_power) | (p_noise <= silent_power)
    ratio = torch.pow(torch.as_tensor(10.0, dtype=dtype, device=clean.device), snr / 10.0)
    # Safe placeholders where no noise is added keep sqrt/division (and gradients) finite.
    denominator = torch.where(no_noise, torch.ones_like(p_noise), p_noise * ratio)
    numerator = torch.where(no_noise, torch.zeros_like(p_clean), p_clean)
    lam = torch.sqrt(numerator / denominator)
    return clean + lam.to(clean.dtype).unsqueeze(-1) * noise.to(clean.dtype)


class MixAtSNR(nn.Module):
    """:func:`mix_at_snr` as a pipeline step: clean (B, T), noise (B, T), snr_db (B,) -> (B, T)."""

    def __init__(self, silent_power: float = 0.0):
        super().__init__()
        self.silent_power = float(silent_power)

    def forward(self, clean: Tensor, noise: Tensor, snr_db: Tensor | float) -> Tensor:
        return mix_at_snr(clean, noise, snr_db, silent_power=self.silent_power)

    def extra_repr(self) -> str:
        return f"silent_power={self.silent_power:g}"


def measured_snr_db(clean: Tensor, mixed: Tensor) -> Tensor:
    """Block SNR in dB that a mix achieved: 10·log10(P_clean / P_(mixed − clean)).

    clean, mixed: (B, T) -> (B,) float64 (float32 on MPS); +inf where nothing was added,
    NaN where the clean block is silent too (0/0).
    """
    clean, mixed = torch.as_tensor(clean), torch.as_tensor(mixed)
    dtype = _power_dtype(clean.device)
    residual = mixed.to(dtype) - clean.to(dtype)
    return 10.0 * torch.log10(_mean_power(clean, dtype) / _mean_power(residual, dtype))
