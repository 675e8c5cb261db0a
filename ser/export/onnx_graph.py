"""A checkpoint's whole classifier as one traceable torch module, for ONNX export:

    blocks (N, samples) float32 -> front-end -> network -> softmax -> (N, C) probabilities

The front-end is traced as it is. Its steps are written in ops an exporter follows, and a step
whose fast running form an exporter cannot follow (the complex STFT, the paper front-end's numba
kernels and uint8 resize) switches itself to plain tensor ops while ``torch.onnx.export``
traces it (:func:`ser.features.stft.exporting`), so a new front-end needs nothing here.
What is left is the network's one untraceable layer, adaptive pooling to a size that does not
divide its input, which becomes two fixed matrix products.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ser.models.calibration import calibrate


class ExportGraph(nn.Module):
    """blocks (N, samples) float32 -> probabilities (N, C): front-end, network, the calibration
    layer if the checkpoint has one, softmax."""

    def __init__(self, frontend: nn.Module, net: nn.Module, calibration: nn.Module | None = None) -> None:
        super().__init__()
        self.frontend, self.net, self.calibration = frontend, net, calibration

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        images = self.frontend(blocks)
        return torch.softmax(calibrate(self.calibration, self.net(images), images), dim=1)


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
    frontend = model.frontend.eval()  # traced as it is: steps switch to exportable ops themselves
    net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format).eval()
    with torch.no_grad():
        _fix_adaptive_pools(net, frontend(example_blocks(1, samples)))
    calibration = getattr(model, "calibration", None)
    return ExportGraph(frontend, net, None if calibration is None else copy.deepcopy(calibration)).eval()


def example_blocks(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    """(batch, samples) float32 noise-like tones: the example input the exporter traces."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * 220.0 * t)[None] + 0.05 * rng.standard_normal((batch, samples))
    return torch.from_numpy(x.astype(np.float32))
