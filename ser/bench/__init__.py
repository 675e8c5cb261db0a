"""How fast images are made and models trained, against the usual ways: what ``ser-bench
[parts=de] [quick=true] [ckpt=RUN]`` (``python -m ser.bench``, :mod:`ser.commands.bench`) runs.

Times, in one process and on the same 1-s blocks of real speech (``speech=DIR``, by default
``../shared/data/urdu`` seen from where it runs, when it is there; speech-like audio from the demo
synthesiser otherwise):

(a)–(c) spectrogram images per second: the paper's way, ser's on the CPU and on the GPU
        (:mod:`ser.bench.images`);
(d)     training images/s of each backbone at its paper split, ser's way (images made in the
        step from fresh noise) against PNGs rendered once + ``ImageFolder`` + ``DataLoader``
        workers, with the rendering time and the kernel's share of the CPU time
        (:mod:`ser.bench.training`);
(e)     an epoch with the frozen trunk computed against one with it kept by the trunk cache
        (:mod:`ser.bench.trunk`);
(f)     with ``ckpt=RUN``: that model's blocks/s in PyTorch and exported to onnxruntime
        (:mod:`ser.bench.onnx`);
(g)     the speech encoders (WavLM, HuBERT, wav2vec 2.0 at base size, random weights), frozen
        and fine-tuned: parameters, training steps/s and peak memory (:mod:`ser.bench.speech`;
        needs ``transformers``, not in the default parts);
(h)     with ``ckpt=RUN``: cold start of ``python -m ser.predict`` on a 2-s recording, ONNX and
        checkpoint, median of fresh processes (:mod:`ser.bench.cold_start`; not by default);
(i)     with ``ckpt=RUN``: ``ser.serve`` under load, streams at real time plus uploads, p50/p95
        latency per hop and per upload, memory and cross-talk checked
        (:mod:`ser.bench.serve_load`; needs the ``serve`` extra; not by default);
(j)     the speech detectors (``vad=silero|webrtc|energy``) on one core: ms per 1-s block and
        per 0.25-s live hop, and how often each calls real speech padded with silence and with
        room noise speech (:mod:`ser.bench.vad`; ``noise=DIR``, by default
        ``../shared/data/noise/ambience`` when there; not by default);
(k)     two trainings side by side on the demo corpus, with torch's old thread choice and with
        ser's (:mod:`ser.cores`), against one alone: seconds per optimiser step
        (:mod:`ser.bench.shared_cores`; run from the project folder; not by default).

``quick=true`` shrinks every size so that the whole run takes seconds and prints every figure
(the tests run it). ``ser-bench --help`` lists every key.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import torch

from ser.allocator import configure_allocator
from ser.bench.common import peak_rss_mib, speech_blocks
from ser.errors import SerError


def run(args: SimpleNamespace) -> None:
    """Every part ``args.parts`` names, each printing its figures (the keys of
    :data:`ser.commands.bench.SPEC`)."""
    from ser.bench.images import image_figures
    from ser.bench import training
    from ser.bench.training import SPLITS, image_folder_training, ser_training
    from ser.bench.trunk import trunk_cache_epochs

    quick = args.quick
    n_blocks = args.blocks or (8 if quick else 512)
    n_reference = min(args.reference_blocks or (2 if quick else 48), n_blocks)
    repeats = args.repeats or (2 if quick else 5)
    steps = args.train_steps or (1 if quick else 3)
    compile_on = args.compile == "on" or (args.compile == "auto" and not quick)
    use_gpu = args.device != "cpu" and torch.cuda.is_available()
    if args.device == "cuda" and not use_gpu:
        raise SerError("device=cuda was asked for, but torch sees no CUDA device here. Run "
                       "with device=auto (or cpu) to benchmark the CPU only.")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SPLITS]
    if unknown:
        raise SerError(f"models={args.models}: no benchmark split for {', '.join(unknown)}; "
                       f"known: {', '.join(SPLITS)}.")

    training.TRUNK_CHUNK = int(args.trunk_chunk)
    blocks_np, source = speech_blocks(args.speech, n_blocks, args.sample_rate)
    allocator = configure_allocator()
    print(f"ser.bench: {n_blocks} blocks of {args.sample_rate} samples: {source}")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f} (1 min)"
          + (f", GPU {torch.cuda.get_device_name()}" if use_gpu else ", no GPU")
          + f"; allocator: {', '.join(f'{k}={v}' for k, v in allocator.items()) or 'as the C library set it'}"
          + f"; frozen layers in chunks of {args.trunk_chunk or 'the whole batch'}")
    if any(part in args.parts for part in "abc"):
        image_figures(blocks_np, n_reference, repeats, args.batch_size, compile_on, use_gpu)

    device = torch.device("cuda" if use_gpu else "cpu")
    batch = args.batch_size if (use_gpu or not quick) else min(args.batch_size, 4)
    workers = args.workers if args.workers is not None else (0 if quick else min(4, os.cpu_count() or 1))
    where = f"batch {batch}, {device.type.upper()}"
    if "d" in args.parts:
        for model in models:
            ours = ser_training(blocks_np, device, batch, steps, model)
            print(f"(d) ser, {model} ({SPLITS[model][1]}; {where}; images made in the step from "
                  f"fresh noise): {ours.images_per_s:.1f} training images/s, image making "
                  f"{100 * ours.image_share:.1f} % of a step (share {ours.image_share:.3f}); "
                  f"{ours.usage}")
            theirs, render_s = image_folder_training(blocks_np, device, batch, steps, model, workers)
            print(f"(d) ImageFolder way, {model} ({batch} PNGs rendered once the paper's way in "
                  f"{render_s:.1f} s = {batch / render_s:.1f} blocks/s; DataLoader with {workers} "
                  f"workers; {where}): {theirs.images_per_s:.1f} training images/s; main process: {theirs.usage}")
            first_theirs = render_s + batch / theirs.images_per_s
            print(f"    ratio ser / ImageFolder, {model}: training images/s "
                  f"{ours.images_per_s / theirs.images_per_s:.2f}x; an epoch with its rendering "
                  f"{first_theirs / (batch / ours.images_per_s):.2f}x (new noise or SNR renders again)")
    if "e" in args.parts:
        for model in models:
            first_s, later_s, store = trunk_cache_epochs(blocks_np, device, batch, steps, model)
            print(f"(e) trunk cache, {model} ({SPLITS[model][1]}; {steps} batches of {batch}, "
                  f"{device.type.upper()}, clean or fixed noise): first epoch {first_s:.2f} s "
                  f"(images + frozen layers, kept), later epochs {later_s:.2f} s: "
                  f"{first_s / later_s:.2f}x per epoch; cache {store}")
    if "f" in args.parts:
        if args.ckpt:
            from ser.bench.onnx import onnx_figures

            print(onnx_figures(args.ckpt, blocks_np, repeats))
        else:
            print("(f) PyTorch against onnxruntime: not measured (give ckpt=RUN, a trained run)")
    if "g" in args.parts:
        from ser.bench.speech import speech_encoder_figures
        from ser.models.speech_encoders import require_transformers

        require_transformers()
        families = [f.strip() for f in args.encoders.split(",") if f.strip()]
        batch_g = args.encoder_batch if not quick else min(args.encoder_batch, 2)
        steps_g = args.train_steps or (1 if quick else 5)
        for line in speech_encoder_figures(families, batch_g, steps_g, quick, device.type,
                                           runs=1 if quick else 2):
            print(line, flush=True)
    if any(part in args.parts for part in "hi") and not args.ckpt:
        print("(h), (i) cold start and the server under load: not measured (give ckpt=RUN, a trained run)")
    if "h" in args.parts and args.ckpt:
        from ser.bench.cold_start import cold_start_figures

        for line in cold_start_figures(args.ckpt, blocks_np.reshape(-1), args.sample_rate,
                                       args.cold_runs or (1 if quick else 5)):
            print(line, flush=True)
    if "i" in args.parts and args.ckpt:
        import tempfile

        from ser.bench.serve_load import serve_load
        from ser.export import export_onnx

        streams = args.load_streams or (2 if quick else 8)
        seconds = args.load_seconds or (3.0 if quick else 60.0)
        with tempfile.TemporaryDirectory(prefix="ser-bench-load-") as tmp:
            onnx = Path(tmp) / "model.onnx"
            export_onnx(args.ckpt, onnx)
            report = serve_load(onnx, blocks_np.reshape(-1), args.sample_rate, streams, seconds,
                                args.load_uploads or (4 if quick else 200))
        print(report.line(streams, seconds), flush=True)
    if "k" in args.parts:
        from ser.bench.shared_cores import shared_core_figures

        for line in shared_core_figures(steps=30 if quick else 120):
            print(line, flush=True)
    if "j" in args.parts:
        from ser.bench.vad import vad_figures

        for line in vad_figures(args.speech, args.noise, args.sample_rate,
                                args.vad_recordings or (4 if quick else 60), blocks_np):
            print(line, flush=True)
    gpu = (f", GPU max allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
           if use_gpu else "")
    print(f"peak memory: RSS {peak_rss_mib():.0f} MiB{gpu}; load average now {os.getloadavg()[0]:.2f}")
