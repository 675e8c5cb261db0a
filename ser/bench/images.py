"""Parts (a)–(c) of ``python -m ser.bench``: spectrogram images per second, against the paper's way.

(a) the reference pipeline (librosa STFT, ``amplitude_to_db``, ``plt.imsave`` to PNG, PIL,
    torchvision Resize), one block at a time as the paper did;
(b) :class:`ser.features.SpectrogramImage` on the CPU as training runs it (numba kernels for
    the element-wise passes), with torch ops only, and (``compile=``) torch.compile'd;
(c) the same on the GPU when there is one.

Each figure is the median of ``repeats`` timed runs after a warm-up run, with how far (b) and
(c) are from (a) on the [0, 1] image.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ser.bench.common import median_seconds, sync_of


def in_batches(pipeline: torch.nn.Module, blocks: torch.Tensor, batch_size: int) -> None:
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            pipeline(blocks[start:start + batch_size])


def difference(pipeline, blocks: torch.Tensor, reference: torch.Tensor) -> str:
    """Mean, p99 and max |pipeline - reference| on the [0, 1] image (and in 1/255 steps)."""
    with torch.no_grad():
        ours = pipeline.rgba(blocks)[:, :3].float().cpu() / 255.0
    diff = (ours - reference).abs().flatten()
    mean, p99, top = diff.mean().item(), float(np.percentile(diff.numpy(), 99)), diff.max().item()
    return (f"mean {mean:.7f} ({mean * 255:.4f}/255), p99 {p99:.7f} ({p99 * 255:.4f}/255), "
            f"max {top:.4f} ({top * 255:.1f}/255)")


def image_figures(blocks_np: np.ndarray, n_reference: int, repeats: int, batch_size: int,
                  compile_on: bool, use_gpu: bool) -> None:
    """Print (a), (b), (c) and the ratio lines for ``blocks_np`` (n, samples) float32."""
    from ser.features.reference import reference_images
    from ser.features.spectrogram import SpectrogramImage

    blocks = torch.from_numpy(blocks_np)
    n_blocks = len(blocks_np)
    ref_blocks = blocks_np[:n_reference]
    reference = reference_images(ref_blocks)
    ref_s, ref_cpu = median_seconds(lambda: reference_images(ref_blocks), repeats)
    ref_rate, ref_cpu_ms = n_reference / ref_s, 1e3 * ref_cpu / n_reference
    print(f"(a) reference (librosa + imsave PNG + PIL + torchvision), CPU: {ref_rate:.1f} blocks/s "
          f"({n_reference} blocks, one at a time, median of {repeats}; "
          f"{ref_cpu_ms:.2f} ms CPU time per block)")

    # The default pipeline (what training uses), then the same without the numba kernels and,
    # if asked, with torch.compile: each with a one-word name for the ratio lines.
    default = SpectrogramImage()
    variants = [("numba" if default.fused else "eager", default)]
    if default.fused:
        variants.append(("torch-ops", SpectrogramImage(fused=False)))
    if compile_on:
        variants.append(("compiled", SpectrogramImage(compile=True, fused=False)))
    rates: dict[str, float] = {}
    cpu_ms: dict[str, float] = {}
    for name, pipeline in variants:
        start = time.perf_counter()
        in_batches(pipeline, blocks[: batch_size], batch_size)
        first = time.perf_counter() - start
        seconds, cpu = median_seconds(lambda: in_batches(pipeline, blocks, batch_size),
                                      repeats)
        rates[f"b {name}"], cpu_ms[f"b {name}"] = n_blocks / seconds, 1e3 * cpu / n_blocks
        print(f"(b) SpectrogramImage, CPU, {name}: {n_blocks / seconds:.1f} blocks/s (batch "
              f"{batch_size}, median of {repeats}; {cpu_ms[f'b {name}']:.3f} ms CPU time "
              f"per block; first batch {first:.1f} s)")
        print(f"    difference vs (a) on the [0,1] image: "
              f"{difference(pipeline, torch.from_numpy(ref_blocks), reference)}")
    if use_gpu:
        device = torch.device("cuda")
        gpu_blocks = blocks.to(device).repeat(max(1, 8192 // n_blocks), 1)
        torch.cuda.reset_peak_memory_stats()
        for name, compiled in [("eager", False)] + ([("compiled", True)] if compile_on else []):
            pipeline = SpectrogramImage(compile=compiled).to(device)
            seconds, _ = median_seconds(lambda: in_batches(pipeline, gpu_blocks, batch_size),
                                        repeats, sync_of(device))
            rates[f"c {name}"] = len(gpu_blocks) / seconds
            print(f"(c) SpectrogramImage, GPU, {name}: {len(gpu_blocks) / seconds:.1f} blocks/s "
                  f"(batch {batch_size}, median of {repeats})")
            print(f"    difference vs (a) on the [0,1] image: "
                  f"{difference(pipeline, torch.from_numpy(ref_blocks).to(device), reference)}")
    else:
        print("(c) SpectrogramImage, GPU: not measured (no CUDA device)")
    print("ratio to (a), blocks/s: " + ", ".join(f"{key[0]}/a {key.split()[1]} "
                                                  f"{rate / ref_rate:.1f}x"
                                                  for key, rate in rates.items()))
    print("ratio to (a), CPU time per block: " + ", ".join(
        f"a/{key[0]} {key.split()[1]} {ref_cpu_ms / ms:.1f}x" for key, ms in cpu_ms.items()))
