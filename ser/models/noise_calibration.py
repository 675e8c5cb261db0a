"""A calibration layer whose temperature follows the noise in the block.

Vector scaling fitted on the validation part leaves a model over-confident in heavy noise and
right in clean speech (ASED, five folds: stated 0.62 where it was right 0.59 at 0 dB, 0.77 for
0.77 clean), because one set of numbers cannot fit both. This layer adds a temperature that
depends on one number read off the network's own input: the spread between the block's loud
and quiet frames (``level_spread``: the 90th minus the 10th percentile of the frames' mean
image value). Speech in quiet has deep pauses between syllables; noise fills them, so the
spread shrinks as the SNR falls, whatever the noise. logits -> (logits x w + b) / T(s) with
log T(s) = t0 + t1 (s - centre) / scale (and, with ``class_shift``, a bias per class that
also moves with the spread: b_k + c_k (s - centre) / scale, for noise that pulls the network
towards one class, as loud noise pulls it towards anger), fitted by negative log-likelihood on the validation
part *and* on copies of it at ``fit_snrs`` (0, 5, 10 dB by default: the validation part's own
conditions, clean and the training SNRs, would not show the fit what heavy noise does), mixed
with the validation noise (``noise.validation_fraction`` of the training noise, held out from
training). Only the validation speakers and that noise are used, so the test sets stay unseen.

The spread is computed from the image inside the layer, so the checkpoint, the ONNX graph
(sort and gather), ``ser-predict``, timelines and the server need nothing new.
"""

from __future__ import annotations

from typing import Sequence

import torch
from ser.models.calibration import VectorScaling, _minimise_nll

# Percentiles (in tenths) of the frames' mean image value whose difference is the level spread.
LOW_TENTHS, HIGH_TENTHS = 1, 9


# A waveform input (the speech encoders') is cut into this many frames for its level spread.
WAVEFORM_FRAMES = 100


def level_spread(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images (W frames) -> (B,) the 90th minus the 10th percentile over frames of
    each frame's mean value, in image units (for the log-mel front-end, 1 unit = top_db / 2 dB).
    A (B, T) waveform (the speech encoders' input) gives the same spread of its frames' log
    power (nepers), over :data:`WAVEFORM_FRAMES` frames."""
    if images.dim() == 2:
        usable = images.shape[1] // WAVEFORM_FRAMES * WAVEFORM_FRAMES
        power = images[:, :usable].float().reshape(images.shape[0], WAVEFORM_FRAMES, -1).pow(2).mean(2)
        frames = 0.5 * torch.log(power + 1e-10)                  # (B, frames)
    else:
        frames = images.float().mean(dim=(1, 2))                 # (B, W)
    ordered = frames.sort(dim=1).values
    last = ordered.shape[1] - 1
    # nearest-rank indices in integer arithmetic (half up), so an exporter can trace them
    return ordered[:, (HIGH_TENTHS * last + 5) // 10] - ordered[:, (LOW_TENTHS * last + 5) // 10]


class NoiseAwareScaling(VectorScaling):
    """Vector scaling (its scale and bias per class), then a temperature that depends on the
    block's level spread."""

    uses_images = True

    def __init__(self, num_classes: int = 4, l2: float = 1e-3,
                 fit_snrs: Sequence[float] = (0.0, 5.0, 10.0), class_shift: bool = False) -> None:
        super().__init__(num_classes, l2, fit_snrs)
        self.class_shift = bool(class_shift)
        self.register_buffer("bias_slope", torch.zeros(num_classes))   # c_k; zero without class_shift
        self.register_buffer("log_temperature", torch.zeros(2))   # t0, t1
        self.register_buffer("centre", torch.zeros(()))           # the spread's mean in the fit
        self.register_buffer("spread_scale", torch.ones(()))      # and its standard deviation

    def context(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B,) what the temperature depends on (:func:`level_spread`)."""
        return level_spread(images)

    def temperature(self, spread: torch.Tensor) -> torch.Tensor:
        """(B,) level spreads -> (B,) temperatures."""
        u = (spread - self.centre.to(spread.dtype)) / self.spread_scale.to(spread.dtype)
        t0, t1 = self.log_temperature.to(spread.dtype)
        return (t0 + t1 * u).exp()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # layers saved before class_shift existed have no slopes: theirs were zero
        state_dict.setdefault(prefix + "bias_slope", torch.zeros_like(self.bias_slope))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, C) logits and (B,) level spreads (:meth:`context`) -> (B, C) calibrated logits."""
        spread = context.to(logits.dtype)
        u = (spread - self.centre.to(spread.dtype)) / self.spread_scale.to(spread.dtype)
        shifted = super().forward(logits) + u.unsqueeze(1) * self.bias_slope.to(logits.dtype)
        return shifted / self.temperature(spread).unsqueeze(1)

    def fit(self, logits: torch.Tensor, labels: torch.Tensor, context: torch.Tensor) -> None:
        x, y, s = logits.detach().double(), labels.detach().long(), context.detach().double()
        self.centre.fill_(float(s.mean()))
        self.spread_scale.fill_(max(float(s.std()), 1e-6))
        u = (s - s.mean()) / self.spread_scale.double()
        scale_offset = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        log_t = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        slope = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=self.class_shift)

        def calibrated(z: torch.Tensor) -> torch.Tensor:
            shifted = z * (1 + scale_offset) + bias + u.unsqueeze(1) * slope
            return shifted / (log_t[0] + log_t[1] * u).exp().unsqueeze(1)

        params = [scale_offset, bias, log_t] + ([slope] if self.class_shift else [])
        _minimise_nll(params, calibrated, x, y, self.l2)
        self.scale.copy_(1 + scale_offset.detach())
        self.bias.copy_(bias.detach())
        self.bias_slope.copy_(slope.detach())
        self.log_temperature.copy_(log_t.detach())
        self.fitted.fill_(True)

    def describe(self) -> str:
        t0, t1 = self.log_temperature.tolist()
        shift = ("; bias slopes " + ", ".join(f"{v:+.2f}" for v in self.bias_slope.tolist())) if self.class_shift else ""
        return (super().describe() + shift + f"; temperature exp({t0:+.3f} {t1:+.3f} x (spread - {float(self.centre):.3f})"
                + f" / {float(self.spread_scale):.3f})")
