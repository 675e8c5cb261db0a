"""Per-channel energy normalisation (PCEN) of mel energies, batched: ``features.pcen=true``.

A log-mel image keeps each band's absolute level, so a speaker's timbre, a microphone's tilt or
a steady noise floor shifts whole rows of it. PCEN (Wang et al., 2017, "Trainable frontend for
robust and far-field keyword spotting") divides each band by a running average of its own
energy (automatic gain control) and then compresses with a root instead of a log:

    M[t]   = (1 - b) M[t-1] + b E[t]                      (smoother, time constant ~0.4 s)
    PCEN   = bias**power * ((1 + E / (eps + M)**gain / bias)**power - 1)

so a band that is loud all the time (a hum, a fan, a formant a voice always has) is pulled
down and what rises above its own recent level (onsets, prosody) stands out. The constants are
librosa's defaults, and the numbers equal ``librosa.pcen`` given the same starting state (the
tests check it). One difference on purpose: a 1-s block is only 2.5 time constants long, so
the smoother starts from each band's mean over the block instead of from zero; from zero the
first half of every block would be boosted by the filter's start-up.
"""

from __future__ import annotations

import math

import torch

# librosa's defaults; energies are magnitudes of a peak-normalised block scaled to int32's range
# (librosa's documented convention for float audio), where eps = 1e-6 is a negligible floor
GAIN, BIAS, POWER, TIME_CONSTANT_S, EPS, SCALE = 0.98, 2.0, 0.5, 0.4, 1e-6, 2.0 ** 31
# PCEN of speech with these constants: median about 0.2, 99th percentile about 2 (1-s blocks of
# read speech); the image maps [0, CEILING] onto [-1, 1] and clips the rare peaks above
CEILING = 2.0


def smoothing_coefficient(time_constant_s: float, frame_rate_hz: float) -> float:
    """The one-pole smoother's ``b`` for a time constant (s) at a frame rate (frames per s):
    librosa's formula (the full width at half maximum of the filter's squared response)."""
    t_frames = time_constant_s * frame_rate_hz
    return (math.sqrt(1 + 4 * t_frames ** 2) - 1) / (2 * t_frames ** 2)


def smoother(frames: int, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The smoother as matrices: ``(frames, frames)`` impulse response, transposed so that
    ``energy @ response_t`` smooths the last axis, and ``(frames,)`` what is left of the
    starting state at each frame. One product instead of a loop over frames: batched on the
    device, and exportable to ONNX as constants (float32)."""
    t = torch.arange(frames, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    response = torch.where(lag >= 0, b * (1 - b) ** lag.clamp_min(0), torch.zeros_like(lag))
    return response.t().float().contiguous(), ((1 - b) ** (t + 1)).float()


def pcen(energy: torch.Tensor, response_t: torch.Tensor, carry: torch.Tensor, gain: float = GAIN,
         bias: float = BIAS, power: float = POWER, eps: float = EPS) -> torch.Tensor:
    """(B, bands, frames) non-negative mel magnitudes -> PCEN of the same shape.

    The smoother (:func:`smoother`) runs over the last axis from each band's mean over the
    frames (see the module docstring); the rest is librosa's arithmetic, in log space.
    """
    smooth = torch.matmul(energy, response_t) + energy.mean(dim=-1, keepdim=True) * carry
    gain_term = torch.exp(-gain * (math.log(eps) + torch.log1p(smooth / eps)))
    return (bias ** power) * torch.expm1(power * torch.log1p(energy * gain_term / bias))


def pcen_image(magnitudes: torch.Tensor, response_t: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
    """(B, bands, frames) mel magnitudes of peak-normalised blocks -> PCEN on a fixed scale,
    [0, CEILING] -> [-1, 1] (the image scale EfficientNet's weights expect). A fixed scale, not
    each block's maximum: PCEN is already normalised, and one onset would otherwise dim the
    whole block."""
    out = pcen(magnitudes * SCALE, response_t, carry)
    return out.clamp(max=CEILING) * (2.0 / CEILING) - 1.0
