"""``python -m ser.bench``: how fast spectrogram images are made, against the paper's way.

Times, in one process and on the same 1-s blocks of real speech (``--speech DIR``, by default
``../shared/data/urdu`` beside the repository when it is there; speech-like audio from the demo
synthesiser otherwise):

(a) the reference pipeline (librosa STFT, ``amplitude_to_db``, ``plt.imsave`` to PNG, PIL,
    torchvision Resize), one block at a time as the paper did;
(b) :class:`ser.features.SpectrogramImage` on the CPU as training runs it (numba kernels for
    the element-wise passes), with torch ops only, and (``--compile``) torch.compile'd;
(c) the same on the GPU when there is one;
(d) training steps of the model (forward, backward, SGD step) on a batch, with the images made
    by the pipeline inside the step, as training does.

Each figure is the median of ``--repeats`` timed runs after a warm-up run. It also reports how far
(b) and (c) are from (a) on the [0, 1] image and the peak memory. ``--quick`` shrinks every
size so that the whole run takes seconds (for the tests).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ser.errors import SerError

DEFAULT_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "urdu"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ser.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for tests (a few seconds)")
    p.add_argument("--blocks", type=int, default=None, help="blocks for (b)/(c) (default 512)")
    p.add_argument("--reference-blocks", type=int, default=None, help="blocks for (a) (default 48)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 5)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="blocks per call and per training step")
    p.add_argument("--train-steps", type=int, default=None, help="timed training steps (default 3)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: also (c) and GPU training when CUDA is available")
    p.add_argument("--speech", type=Path,
                   default=DEFAULT_SPEECH if DEFAULT_SPEECH.is_dir() else None,
                   help="folder of speech recordings (default: ../shared/data/urdu when present)")
    p.add_argument("--compile", default="auto", choices=["auto", "on", "off"],
                   help="also time torch.compile'd pipelines (auto: on unless --quick)")
    p.add_argument("--model", default="alexnet", help="backbone for (d)")
    p.add_argument("--sample-rate", type=int, default=16000)
    return p


# ------------------------------------------------------------------------------ inputs
def speech_blocks(folder: Path | None, n: int, sample_rate: int, seed: int = 0
                  ) -> tuple[np.ndarray, str]:
    """``n`` 1-s blocks (n, sample_rate) float32 and a description of where they come from."""
    from ser.audio.io import list_audio_files, load_audio

    blocks: list[np.ndarray] = []
    if folder is not None:
        files = list_audio_files(folder)
        if not files:
            raise SerError(f"--speech {folder} holds no audio files; give a folder of speech "
                           "recordings (wav/flac/ogg), or leave --speech out to use generated "
                           "speech.")
        order = np.random.default_rng(seed).permutation(len(files))
        used = 0
        for index in order:
            audio = load_audio(files[index], sample_rate)
            used += 1
            blocks += _cut(audio, sample_rate)
            if len(blocks) >= n:
                break
        source = f"real speech from {folder} ({used} files)"
    else:
        import tempfile

        from ser.data.demo import build_demo_corpus

        with tempfile.TemporaryDirectory() as tmp:
            per_class = max(1, min(n, 64) // 8)
            table = build_demo_corpus(tmp, seed=seed, n_speakers=2, utterances_per_class=per_class,
                                      sample_rate=sample_rate)
            for utterance in table.utterances:
                audio = load_audio(utterance.path, sample_rate)
                blocks += _cut(audio, sample_rate)
        source = "generated speech-like audio (the demo synthesiser; no --speech folder)"
    if not blocks:
        raise SerError("No 1-s block could be cut from the speech recordings; they are all shorter "
                       "than a second. Give a folder with longer recordings via --speech.")
    unique = len(blocks)
    stacked = np.stack(blocks[:n]).astype(np.float32)
    if unique < n:  # too little audio: repeat it (timing does not depend on content)
        stacked = np.resize(stacked, (n, sample_rate)).astype(np.float32)
        source += f", {unique} distinct blocks repeated"
    return stacked, source


def _cut(audio: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """Non-overlapping 1-s blocks of ``audio``; the remainder is dropped (SPEC §2 step 2)."""
    return list(audio[: audio.size // sample_rate * sample_rate].reshape(-1, sample_rate))


# ---------------------------------------------------------------------------- timing
def median_seconds(run: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None
                   ) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``repeats`` calls of
    ``run``, after one untimed warm-up call. CPU time shows the work done even when other jobs
    share the cores and stretch the wall time."""
    run()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


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


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


# -------------------------------------------------------------------------- training
def training_step_figures(blocks: np.ndarray, device: torch.device, batch_size: int, steps: int,
                          model: str, compile_images: bool) -> tuple[float, float]:
    """(training images/s, share of a step spent making images) for ``batch_size`` blocks."""
    from ser.audio.mixing import mix_at_snr
    from ser.audio.noise import NoiseBank
    from ser.features.spectrogram import SpectrogramImage
    from ser.models.backbones import build_backbone

    net, groups = build_backbone(model, num_classes=4, pretrained=False)
    net = net.to(device).train()
    # The paper's optimiser (lr 4e-4 fine-tuned, 0.01 new layer); values do not change the speed.
    optimiser = torch.optim.SGD([{"params": groups["finetune"], "lr": 4e-4},
                                 {"params": groups["head"], "lr": 1e-2}],
                                momentum=0.9, weight_decay=4e-4)
    pipeline = SpectrogramImage(compile=compile_images).to(device)
    rng = np.random.default_rng(0)
    bank, _ = NoiseBank.demo(int(blocks.shape[1]), seconds=8.0, seed=0)
    clean = torch.from_numpy(np.resize(blocks, (batch_size, blocks.shape[1]))).to(device)
    noise = torch.from_numpy(bank.segments(rng, batch_size, blocks.shape[1])).to(device)
    snr = torch.from_numpy(rng.choice([15.0, 20.0, 40.0, np.inf], batch_size)).float().to(device)
    labels = torch.from_numpy(rng.integers(0, 4, batch_size)).to(device)
    sync = _sync(device)
    image_times, step_times = [], []
    for step in range(steps + 1):  # step 0 is the warm-up
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            images = pipeline(mix_at_snr(clean, noise, snr))
        sync()
        made = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(images), labels)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        sync()
        if step:
            image_times.append(made - start)
            step_times.append(time.perf_counter() - start)
    step_time = statistics.median(step_times)
    return batch_size / step_time, statistics.median(image_times) / step_time


# ------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> None:
    from ser.features.reference import reference_images
    from ser.features.spectrogram import SpectrogramImage

    quick = args.quick
    n_blocks = args.blocks or (8 if quick else 512)
    n_reference = min(args.reference_blocks or (2 if quick else 48), n_blocks)
    repeats = args.repeats or (2 if quick else 5)
    steps = args.train_steps or (1 if quick else 3)
    compile_on = args.compile == "on" or (args.compile == "auto" and not quick)
    use_gpu = args.device != "cpu" and torch.cuda.is_available()
    if args.device == "cuda" and not use_gpu:
        raise SerError("--device cuda was asked for, but torch sees no CUDA device here. Run "
                       "with --device auto (or cpu) to benchmark the CPU only.")

    blocks_np, source = speech_blocks(args.speech, n_blocks, args.sample_rate)
    blocks = torch.from_numpy(blocks_np)
    print(f"ser.bench: {n_blocks} blocks of {args.sample_rate} samples: {source}")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f} (1 min)"
          + (f", GPU {torch.cuda.get_device_name()}" if use_gpu else ", no GPU"))

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
        in_batches(pipeline, blocks[: args.batch_size], args.batch_size)
        first = time.perf_counter() - start
        seconds, cpu = median_seconds(lambda: in_batches(pipeline, blocks, args.batch_size),
                                      repeats)
        rates[f"b {name}"], cpu_ms[f"b {name}"] = n_blocks / seconds, 1e3 * cpu / n_blocks
        print(f"(b) SpectrogramImage, CPU, {name}: {n_blocks / seconds:.1f} blocks/s (batch "
              f"{args.batch_size}, median of {repeats}; {cpu_ms[f'b {name}']:.3f} ms CPU time "
              f"per block; first batch {first:.1f} s)")
        print(f"    difference vs (a) on the [0,1] image: "
              f"{difference(pipeline, torch.from_numpy(ref_blocks), reference)}")
    if use_gpu:
        device = torch.device("cuda")
        gpu_blocks = blocks.to(device).repeat(max(1, 8192 // n_blocks), 1)
        torch.cuda.reset_peak_memory_stats()
        for name, compiled in [("eager", False)] + ([("compiled", True)] if compile_on else []):
            pipeline = SpectrogramImage(compile=compiled).to(device)
            seconds, _ = median_seconds(lambda: in_batches(pipeline, gpu_blocks, args.batch_size),
                                        repeats, _sync(device))
            rates[f"c {name}"] = len(gpu_blocks) / seconds
            print(f"(c) SpectrogramImage, GPU, {name}: {len(gpu_blocks) / seconds:.1f} blocks/s "
                  f"(batch {args.batch_size}, median of {repeats})")
            print(f"    difference vs (a) on the [0,1] image: "
                  f"{difference(pipeline, torch.from_numpy(ref_blocks).to(device), reference)}")
    else:
        print("(c) SpectrogramImage, GPU: not measured (no CUDA device)")
    print("ratio to (a), blocks/s: " + ", ".join(f"{key[0]}/a {key.split()[1]} "
                                                  f"{rate / ref_rate:.1f}x"
                                                  for key, rate in rates.items()))
    print("ratio to (a), CPU time per block: " + ", ".join(
        f"a/{key[0]} {key.split()[1]} {ref_cpu_ms / ms:.1f}x" for key, ms in cpu_ms.items()))

    device = torch.device("cuda" if use_gpu else "cpu")
    batch = args.batch_size if (use_gpu or not quick) else min(args.batch_size, 4)
    images_per_s, share = training_step_figures(blocks_np, device, batch, steps, args.model,
                                                compile_images=False)
    print(f"(d) training step ({args.model}, batch {batch}, {device.type.upper()}, forward + "
          f"backward + SGD, images made in the step): {images_per_s:.1f} training images/s, "
          f"image making {100 * share:.1f} % of a step (share {share:.3f})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    gpu = (f", GPU max allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
           if use_gpu else "")
    print(f"peak memory: RSS {rss:.0f} MiB{gpu}; load average now {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        run(args)
    except SerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
