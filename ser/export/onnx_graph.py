"""A checkpoint's whole classifier as one traceable torch module, for ONNX export.

The training front-ends are written for speed on the training device: the paper's
:class:`~ser.features.spectrogram.SpectrogramImage` runs numba kernels from a thread pool,
packs RGBA bytes into int32 words and uses torch's uint8 resize, none of which an exporter can
trace. This module rebuilds the same arithmetic from plain tensor ops (pad, conv1d, matmul,
log, gather) so that the graph runs in onnxruntime with no Python:

    blocks (N, samples) float32 -> front-end -> network -> softmax -> (N, C) probabilities

The STFT is a strided ``conv1d`` with a fixed windowed DFT basis (cos and -sin rows, one per
frequency bin): exporters do not handle ``torch.stft``/``torch.fft`` on complex tensors
reliably, and a convolution is exact up to float32 rounding.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ser.errors import SerError
from ser.features.logmel import LogMel, delta
from ser.features.pcen import pcen_image
from ser.features.spectrogram import SpectrogramImage
from ser.features.stft import periodic_hamming
from ser.features.waveform import Waveform


def dft_basis(n_fft: int, window: torch.Tensor, descending: bool = False) -> torch.Tensor:
    """Windowed real-DFT basis as conv1d weights: (2·F, 1, n_fft), F = n_fft // 2 + 1.

    Rows 0..F-1 give the real parts, F..2F-1 the imaginary parts of ``rfft(frame · window)``;
    ``window`` is length ``n_fft`` (already zero-padded and centred). ``descending`` orders the
    bins from the highest frequency down (image orientation: low frequencies at the bottom).
    """
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    if descending:
        k = k.flip(0)
    angle = 2.0 * math.pi * k[:, None] * n[None, :] / n_fft
    w = window.double()[None, :]
    basis = torch.cat([torch.cos(angle) * w, -torch.sin(angle) * w])
    return basis.float().unsqueeze(1)


def _centred(window: torch.Tensor, n_fft: int) -> torch.Tensor:
    """A ``win_length`` window zero-padded to ``n_fft`` and centred, as librosa/torch.stft do."""
    left = (n_fft - window.shape[0]) // 2
    full = torch.zeros(n_fft, dtype=torch.float64)
    full[left:left + window.shape[0]] = window.double()
    return full


def _infinity_norm(blocks: torch.Tensor) -> torch.Tensor:
    """(N, T) -> (N, T) divided by each block's peak; a silent block stays zero."""
    peak = blocks.abs().amax(dim=-1, keepdim=True)
    return blocks * torch.where(peak > 0, 1.0 / peak.clamp_min(1e-30), torch.ones_like(peak))


class _Power(nn.Module):
    """(N, T) -> |STFT|² (N, F, frames), centred frames (``pad_mode`` 'reflect' or 'constant')."""

    def __init__(self, n_fft: int, hop_length: int, window: torch.Tensor, pad_mode: str,
                 descending: bool) -> None:
        super().__init__()
        self.n_fft, self.hop, self.pad_mode = n_fft, hop_length, pad_mode
        self.bins = n_fft // 2 + 1
        self.register_buffer("basis", dft_basis(n_fft, _centred(window, n_fft), descending))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.n_fft // 2
        padded = F.pad(x.unsqueeze(1), (half, half), mode=self.pad_mode)
        spec = F.conv1d(padded, self.basis, stride=self.hop)          # (N, 2F, frames)
        re, im = spec[:, :self.bins], spec[:, self.bins:]
        return re * re + im * im


class LogMelGraph(nn.Module):
    """:class:`~ser.features.logmel.LogMel` in exportable ops: (N, T) -> (N, 3, H, W)."""

    def __init__(self, frontend: LogMel, samples: int | None = None) -> None:
        super().__init__()
        self.f = frontend
        self.power = _Power(frontend.n_fft, frontend.hop_length, frontend.window, "reflect", False)
        self.register_buffer("mel", frontend.mel.clone())
        if frontend.pcen:   # the smoother's matrices for the block's frame count, as constants
            frames = (samples or frontend.sample_rate) // frontend.hop_length + 1
            response_t, carry = frontend.pcen_smoother(frames)
            self.register_buffer("response_t", response_t.clone())
            self.register_buffer("carry", carry.clone())

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        f = self.f
        power = self.power(_infinity_norm(blocks))
        mel = torch.matmul(self.mel, power)
        db = 10.0 * torch.log10(mel.clamp(min=f.amin))
        db = torch.clamp(db - db.amax(dim=(1, 2), keepdim=True), min=-f.top_db)
        half = f.top_db / 2.0
        if f.pcen:
            base = pcen_image(torch.matmul(self.mel, power.sqrt()), self.response_t, self.carry)
        else:
            base = (db - db.mean(dim=-1, keepdim=True)) / half if f.band_norm else (db + half) / half
        if f.deltas:
            d1 = delta(db)
            image = torch.stack([base, d1 / 10.0, delta(d1) / 5.0], dim=1)
        else:
            image = torch.cat([base.unsqueeze(1)] * 3, dim=1)
        if f.image_size is not None:
            image = F.interpolate(image, size=f.image_size, mode="bilinear", align_corners=False)
        return image


def _resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of torch's antialiased bilinear resize along one axis (PIL's)."""
    eye = torch.eye(n_in, dtype=torch.float64).view(1, 1, n_in, n_in)
    rows = F.interpolate(eye, size=(n_in, n_out), mode="bilinear", antialias=True,
                         align_corners=False)
    return rows[0, 0].t().float().contiguous()


class SpectrogramImageGraph(nn.Module):
    """:class:`~ser.features.spectrogram.SpectrogramImage` in exportable ops.

    (N, T) -> zero-padded STFT power (N, 257, 259), highest bin first -> colour-table rows
    ``floor(levels · [0, 1] dB image)`` -> RGB bytes by gather -> PIL-style antialiased
    bilinear resize as two matrix products, rounded to bytes after each pass as PIL does ->
    ImageNet normalisation: (N, 3, H, W) float32.
    """

    def __init__(self, frontend: SpectrogramImage, samples: int) -> None:
        super().__init__()
        s = frontend.stft_db
        self.amin2, self.top_db_log = s.amin ** 2, s.top_db_log
        self.levels = frontend.colour.levels
        self.power = _Power(s.n_fft, s.hop_length, periodic_hamming(s.win_length), "constant", True)
        self.register_buffer("table", frontend.colour.table[:, :3].float().clone())   # (L, 3) bytes
        height, width = s.n_fft // 2 + 1, s.frames(samples)
        self.size = (height, width)
        self.resizing = tuple(frontend.image_size) != self.size
        self.register_buffer("rows_w", _resize_matrix(width, frontend.image_size[1]).t().contiguous())
        self.register_buffer("rows_h", _resize_matrix(height, frontend.image_size[0]))
        self.register_buffer("gain", frontend.normalise.byte_gain.view(1, 3, 1, 1).clone())
        self.register_buffer("offset", frontend.normalise.offset.view(1, 3, 1, 1).clone())

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        log_power = torch.log(self.power(_infinity_norm(blocks)).clamp_min(self.amin2))
        top = log_power.amax(dim=(1, 2), keepdim=True)
        bottom = torch.maximum(log_power.amin(dim=(1, 2), keepdim=True), top - self.top_db_log)
        span = top - bottom
        gain = torch.where(span > 0, self.levels / span.clamp_min(1e-30), torch.zeros_like(span))
        rows = torch.floor(((log_power - bottom) * gain).clamp(0.0, self.levels - 1)).long()
        rgb = self.table[rows].permute(0, 3, 1, 2)                     # (N, 3, F, frames) bytes
        if self.resizing:
            wide = torch.floor(torch.matmul(rgb, self.rows_w) + 0.5).clamp(0.0, 255.0)
            rgb = torch.floor(torch.matmul(self.rows_h, wide) + 0.5).clamp(0.0, 255.0)
        return rgb * self.gain + self.offset


class ExportGraph(nn.Module):
    """blocks (N, samples) float32 -> probabilities (N, C): front-end, network, softmax."""

    def __init__(self, frontend: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.frontend, self.net = frontend, net

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(self.frontend(blocks)), dim=1)


def exportable_frontend(frontend: nn.Module, samples: int) -> nn.Module:
    """The export-only equivalent of a training front-end, or a SerError naming the module."""
    if isinstance(frontend, LogMel):
        return LogMelGraph(frontend, samples)
    if isinstance(frontend, SpectrogramImage):
        return SpectrogramImageGraph(frontend, samples)
    if isinstance(frontend, Waveform):
        return frontend  # plain tensor arithmetic: exports as it is
    name = f"{type(frontend).__module__}.{type(frontend).__qualname__}"
    raise SerError(f"The front-end {name} of this checkpoint cannot be exported to ONNX: only "
                   "ser.features.logmel.LogMel (features=logmel), ser.features.spectrogram."
                   "SpectrogramImage (features=paper) and ser.features.waveform.Waveform "
                   "(features=waveform) can be exported. Use "
                   "the checkpoint from Python (evaluate.py audio=FILE) instead.")


def _pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) averaging weights of adaptive average pooling along one axis."""
    weights = torch.zeros(n_out, n_in)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        weights[i, lo:hi] = 1.0 / (hi - lo)
    return weights


class FixedAdaptiveAvgPool(nn.Module):
    """``AdaptiveAvgPool2d`` for one known input size as two matrix products.

    The TorchScript exporter refuses adaptive pooling whose output does not divide the input
    (AlexNet's 7×7 -> 6×6 on 256-pixel images); the input size is fixed by the block length.
    """

    def __init__(self, size_in: tuple[int, int], size_out: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", _pool_matrix(size_in[0], size_out[0]))
        self.register_buffer("cols", _pool_matrix(size_in[1], size_out[1]).t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.cols)


def _fix_adaptive_pools(net: nn.Module, example: torch.Tensor) -> None:
    """Replace, in place, every AdaptiveAvgPool2d of ``net`` with its fixed-size equivalent."""
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [module.register_forward_pre_hook(
        lambda mod, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
        for name, module in net.named_modules() if isinstance(module, nn.AdaptiveAvgPool2d)]
    with torch.no_grad():
        net(example)
    for hook in hooks:
        hook.remove()
    for name, size_in in sizes.items():
        module = net.get_submodule(name)
        out = module.output_size
        out = (out, out) if isinstance(out, int) else tuple(out)
        out = tuple(size_in[i] if o is None else int(o) for i, o in enumerate(out))
        parent, _, leaf = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, leaf,
                FixedAdaptiveAvgPool(size_in, out))


def build_export_graph(model: nn.Module, samples: int) -> ExportGraph:
    """A classifier holding ``frontend`` and ``net`` (eval mode; the LightningModule or
    :class:`ser.inference.checkpoint_predictor.BlockClassifier`) -> :class:`ExportGraph` for
    ``samples``-long blocks.

    The network is a copy (the model itself is left as it was), in contiguous memory order.
    """
    frontend = exportable_frontend(model.frontend, samples)
    net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format).eval()
    with torch.no_grad():
        _fix_adaptive_pools(net, frontend(example_blocks(1, samples)))
    return ExportGraph(frontend, net).eval()


def example_blocks(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    """(batch, samples) float32 noise-like tones: the example input the exporter traces."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * 220.0 * t)[None] + 0.05 * rng.standard_normal((batch, samples))
    return torch.from_numpy(x.astype(np.float32))
