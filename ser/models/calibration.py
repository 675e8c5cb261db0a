"""Calibration layers: (B, C) logits -> (B, C) logits whose softmax says how often the model is
right, fitted after training on the validation part (its speakers are held out from training,
so the fit sees the confidence the model will have on new voices) by minimising the negative
log-likelihood. The fitted numbers are buffers of the LightningModule, so they travel in the
checkpoint and in the ONNX graph (:mod:`ser.export.onnx_graph`), and every way in (test sets,
``ser-predict``, timelines, the server) gives calibrated probabilities with no extra step.

``calibration=none`` (no layer), ``temperature`` (one scalar T: logits / T; accuracy unchanged,
Guo et al. 2017), ``vector`` (a scale and a bias per class, Kull et al. 2019's vector scaling;
it may change the arg-max) and ``noise_aware`` (vector scaling and a temperature that follows
the noise in the block, :mod:`ser.models.noise_calibration`). A new method is one file with a
``fit`` and a ``forward`` and one YAML in conf/calibration/.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Calibrator(Protocol):
    """The extension point: an ``nn.Module`` whose ``forward`` maps (B, C) logits to (B, C)
    logits, whose ``fit`` sets its buffers from validation logits and labels (and ``fitted`` to
    true), and whose ``describe`` says what it fitted, for run.json.

    A layer that also reads the network's input sets ``uses_images = True`` and has
    ``context(images) -> (B,)``; it is then called as ``layer(logits, context)`` and fitted as
    ``fit(logits, labels, context)`` (:func:`calibrate` does the dispatch), and it may name
    ``fit_snrs``: extra noisy copies of the validation part (validation noise) its fit sees."""

    fitted: torch.Tensor

    def __call__(self, logits: torch.Tensor, *context: torch.Tensor) -> torch.Tensor: ...

    def fit(self, logits: torch.Tensor, labels: torch.Tensor, *context: torch.Tensor) -> None: ...

    def describe(self) -> str: ...


def calibrate(layer: nn.Module | None, logits: torch.Tensor, images: torch.Tensor | None) -> torch.Tensor:
    """(B, C) logits of the (B, ...) network inputs ``images`` -> calibrated (B, C) logits
    (``layer`` None: unchanged). Every way in calls this, so a layer that reads the input works
    in the test sets, the predictors and the ONNX graph alike."""
    if layer is None:
        return logits
    if getattr(layer, "uses_images", False):
        return layer(logits, layer.context(images))
    return layer(logits)


def _minimise_nll(params: list[torch.Tensor], calibrated, logits: torch.Tensor, labels: torch.Tensor,
                  l2: float = 0.0) -> None:
    """L-BFGS on the mean cross-entropy of ``calibrated(logits)`` (float64, full batch)."""
    optimiser = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(calibrated(logits), labels)
        if l2:
            loss = loss + l2 * sum((p ** 2).sum() for p in params)
        loss.backward()
        return loss

    optimiser.step(closure)


class TemperatureScaling(nn.Module):
    """logits / T with one temperature T > 0 (T > 1 softens an over-confident model)."""

    def __init__(self, num_classes: int = 4, fit_snrs: Sequence[float] = ()) -> None:
        super().__init__()
        self.fit_snrs = [float(s) for s in fit_snrs]   # extra validation copies the fit sees (dB)
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature.to(logits.dtype)

    def fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        x, y = logits.detach().double(), labels.detach().long()
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        _minimise_nll([log_t], lambda z: z / log_t.exp(), x, y)
        self.temperature.fill_(float(log_t.detach().exp()))
        self.fitted.fill_(True)

    def describe(self) -> str:
        return f"temperature {float(self.temperature):.3f}"


class VectorScaling(nn.Module):
    """logits x w + b with a scale and a bias per class (lightly L2-regularised towards none)."""

    def __init__(self, num_classes: int = 4, l2: float = 1e-3, fit_snrs: Sequence[float] = ()) -> None:
        super().__init__()
        self.l2 = float(l2)
        self.fit_snrs = [float(s) for s in fit_snrs]   # extra validation copies the fit sees (dB)
        self.register_buffer("scale", torch.ones(num_classes))
        self.register_buffer("bias", torch.zeros(num_classes))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale.to(logits.dtype) + self.bias.to(logits.dtype)

    def fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        x, y = logits.detach().double(), labels.detach().long()
        scale_offset = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        _minimise_nll([scale_offset, bias], lambda z: z * (1 + scale_offset) + bias, x, y, self.l2)
        self.scale.copy_(1 + scale_offset.detach())
        self.bias.copy_(bias.detach())
        self.fitted.fill_(True)

    def describe(self) -> str:
        return ("scales " + ", ".join(f"{v:.2f}" for v in self.scale.tolist())
                + "; biases " + ", ".join(f"{v:+.2f}" for v in self.bias.tolist()))
