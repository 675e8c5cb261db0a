"""Part (d) of ``python -m ser.bench``: training images/s, ser's way against the way users write it.

ser's way: raw blocks and fresh noise segments go to the device, the batch is mixed and turned
into images inside the step, the frozen layers run in chunks, nothing touches disk.

The way a notebook or the paper does it: every block rendered once the paper's way (librosa,
``plt.imsave`` to a PNG file), then torchvision ``ImageFolder`` with ``Resize``/``ToTensor``/
``Normalize`` and a ``DataLoader`` with workers, the same backbone, split and batch. Its noise
is fixed at rendering time (fresh noise would mean rendering again every epoch), and the
rendering is counted: once per corpus, and again for every new SNR or noise.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ser.bench.common import Usage, sync_of, usage_now
from ser.errors import SerError

# The paper's frozen split of each backbone: (first fine-tuned stage, what is frozen).
SPLITS = {"alexnet": ("features.10", "Conv1-Conv4 frozen; Conv5 + FC fine-tuned"),
          "efficientnet_lite0": ("blocks.5", "stem + blocks.0-4 frozen; blocks.5-6 + head fine-tuned")}
SNRS = (15.0, 20.0, 40.0, float("inf"))


@dataclass
class StepFigures:
    images_per_s: float
    image_share: float  # of a step; 0 where images come from a loader
    usage: Usage


TRUNK_CHUNK = 32  # images per pass through the frozen layers on the CPU (trunk_chunk=)


def build_net(model: str, device: torch.device):
    """The backbone at its paper split, channels-last, random weights (speed does not depend on
    them), with the paper's SGD over its trainable parameters."""
    from ser.models.backbones import build_backbone
    from ser.models.optimizers import parameter_groups

    if model not in SPLITS:
        raise SerError(f"models=: no benchmark split for {model!r}; known: {', '.join(SPLITS)}.")
    net = build_backbone(model, num_classes=4, pretrained=False,
                         trainable_from=SPLITS[model][0], trunk_chunk=TRUNK_CHUNK)
    net = net.to(device).to(memory_format=torch.channels_last).train()
    groups = parameter_groups(net, {"lr": 4e-4, "head_weight_lr": 1e-2, "head_bias_lr": 1e-2})
    optimiser = torch.optim.SGD(groups, momentum=0.9, weight_decay=4e-4)
    return net, optimiser


def _step(net, optimiser, images: torch.Tensor, labels: torch.Tensor) -> None:
    loss = torch.nn.functional.cross_entropy(net(images), labels)
    loss.backward()
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)


def ser_training(blocks: np.ndarray, device: torch.device, batch: int, steps: int,
                 model: str) -> StepFigures:
    """Steps of ``batch`` blocks with images made in the step from fresh noise each step."""
    from ser.audio.mixing import mix_at_snr
    from ser.audio.noise import NoiseBank
    from ser.features.spectrogram import SpectrogramImage

    net, optimiser = build_net(model, device)
    pipeline = SpectrogramImage(channels_last=True).to(device)
    rng = np.random.default_rng(0)
    bank, _ = NoiseBank.demo(int(blocks.shape[1]), seconds=8.0, seed=0)
    clean = torch.from_numpy(np.resize(blocks, (batch, blocks.shape[1]))).to(device)
    labels = torch.from_numpy(rng.integers(0, 4, batch)).to(device)
    sync = sync_of(device)
    image_times, step_times = [], []
    for step in range(steps + 1):  # step 0 is the warm-up
        if step == 1:
            usage_start = usage_now()
        sync()
        start = time.perf_counter()
        noise = torch.from_numpy(bank.segments(rng, batch, blocks.shape[1])).to(device)
        snr = torch.from_numpy(rng.choice(SNRS, batch)).float().to(device)
        with torch.no_grad():
            images = pipeline(mix_at_snr(clean, noise, snr))
        sync()
        made = time.perf_counter()
        _step(net, optimiser, images, labels)
        sync()
        if step:
            image_times.append(made - start)
            step_times.append(time.perf_counter() - start)
    step_time = statistics.median(step_times)
    return StepFigures(batch / step_time, statistics.median(image_times) / step_time,
                       usage_now() - usage_start)


def render_image_folder(blocks: np.ndarray, root: Path, seed: int = 0) -> float:
    """Mix each block with noise at a drawn SNR once and write its PNG the paper's way into
    ``root/<class>/``; returns the seconds it took."""
    from ser.audio.mixing import mix_at_snr
    from ser.audio.noise import NoiseBank
    from ser.features.reference import reference_png

    rng = np.random.default_rng(seed)
    bank, _ = NoiseBank.demo(int(blocks.shape[1]), seconds=8.0, seed=seed)
    start = time.perf_counter()
    noise = torch.from_numpy(bank.segments(rng, len(blocks), blocks.shape[1]))
    snr = torch.from_numpy(rng.choice(SNRS, len(blocks))).float()
    mixed = mix_at_snr(torch.from_numpy(blocks), noise, snr).numpy()
    for i, block in enumerate(mixed):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"block{i:05d}.png").write_bytes(reference_png(block))
    return time.perf_counter() - start


def image_folder_training(blocks: np.ndarray, device: torch.device, batch: int, steps: int,
                          model: str, workers: int) -> tuple[StepFigures, float]:
    """(figures of steps fed by ImageFolder + DataLoader, seconds spent rendering the PNGs)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    with tempfile.TemporaryDirectory(prefix="ser-bench-png-") as tmp:
        render_s = render_image_folder(np.resize(blocks, (batch, blocks.shape[1])), Path(tmp))
        transform = transforms.Compose([transforms.Resize((256, 256)), transforms.ToTensor(),
                                        transforms.Normalize((0.485, 0.456, 0.406),
                                                             (0.229, 0.224, 0.225))])
        loader = DataLoader(datasets.ImageFolder(tmp, transform=transform), batch_size=batch,
                            shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                            drop_last=True, pin_memory=device.type == "cuda")
        net, optimiser = build_net(model, device)
        sync = sync_of(device)
        step_times = []

        def forever():
            while True:
                yield from loader

        batches = forever()
        for step in range(steps + 1):  # step 0 is the warm-up (it starts the workers)
            if step == 1:
                usage_start = usage_now()
            sync()
            start = time.perf_counter()
            images, labels = next(batches)
            images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            _step(net, optimiser, images, labels.to(device))
            sync()
            if step:
                step_times.append(time.perf_counter() - start)
        usage = usage_now() - usage_start
        del batches
    return StepFigures(batch / statistics.median(step_times), 0.0, usage), render_s
