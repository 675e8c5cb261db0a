"""``ser-bench [parts=de] [quick=true] [ckpt=RUN]`` (or ``python -m ser.bench``): how fast images are made and models trained, against the usual ways.

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
(h)     with ``--ckpt RUN``: cold start of ``python -m ser.predict`` on a 2-s recording, ONNX and
        checkpoint, median of fresh processes (:mod:`ser.bench.cold_start`; not by default);
(i)     with ``--ckpt RUN``: ``ser.serve`` under load, streams at real time plus uploads, p50/p95
        latency per hop and per upload, memory and cross-talk checked
        (:mod:`ser.bench.serve_load`; needs the ``serve`` extra; not by default);
(j)     the speech detectors (``vad=silero|webrtc|energy``) on one core: ms per 1-s block and
        per 0.25-s live hop, and how often each calls real speech padded with silence and with
        room noise speech (:mod:`ser.bench.vad`; ``noise=DIR``, by default
        ``../shared/data/noise/ambience`` when there; not by default).

``quick=true`` shrinks every size so that the whole run takes seconds and prints every figure
(the tests run it). Arguments are ``key=value`` like every ser command; the older ``--flag``
forms (``--trunk-chunk 0``) work too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from ser.allocator import configure_allocator
from ser.bench.common import peak_rss_mib, speech_blocks
from ser.cli import key_values, prepare_process, report_errors
from ser.errors import SerError

DEFAULT_SPEECH = Path("..") / "shared" / "data" / "urdu"  # from the project folder, installed or not
DEFAULT_NOISE = Path("..") / "shared" / "data" / "noise" / "ambience"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser-bench", description=__doc__.split("\n\n")[0],
                                epilog="Arguments are key=value like every ser command (trunk_chunk=0 "
                                       "parts=de quick=true); the --flag forms below work too.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for tests (a few seconds)")
    p.add_argument("--parts", default="abcdef", help="which parts to run, e.g. de (default abcdef)")
    p.add_argument("--blocks", type=int, default=None, help="blocks for (b)/(c) (default 512)")
    p.add_argument("--reference-blocks", type=int, default=None, help="blocks for (a) (default 48)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 5)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="blocks per call and per training step")
    p.add_argument("--train-steps", type=int, default=None,
                   help="timed training steps, and batches per epoch in (e) (default 3)")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers of the ImageFolder way in (d) (default: the CPU cores, at most 4)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: also (c) and GPU training when CUDA is available")
    p.add_argument("--speech", type=Path,
                   default=DEFAULT_SPEECH if DEFAULT_SPEECH.is_dir() else None,
                   help="folder of speech recordings (default: ../shared/data/urdu when present)")
    p.add_argument("--compile", default="auto", choices=["auto", "on", "off"],
                   help="also time torch.compile'd pipelines (auto: on unless --quick)")
    p.add_argument("--trunk-chunk", type=int, default=32,
                   help="images per pass through the frozen layers on the CPU (0: the whole batch)")
    p.add_argument("--models", default="alexnet,efficientnet_lite0", help="backbones for (d) and (e)")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--encoders", default="wavlm,hubert,wav2vec2", help="speech encoder families for (g)")
    p.add_argument("--encoder-batch", type=int, default=8, help="1-s blocks per training step in (g)")
    p.add_argument("--ckpt", default=None,
                   help="a trained run or .ckpt: (f) its blocks/s in PyTorch and exported to "
                        "onnxruntime, (h) cold start, (i) the server under load")
    p.add_argument("--cold-runs", type=int, default=None, help="fresh processes per figure in (h) (default 5)")
    p.add_argument("--load-streams", type=int, default=None, help="WebSocket streams at once in (i) (default 8)")
    p.add_argument("--load-seconds", type=float, default=None, help="seconds each stream runs in (i) (default 60)")
    p.add_argument("--load-uploads", type=int, default=None, help="uploads to /predict in (i) (default 200)")
    p.add_argument("--noise", type=Path, default=DEFAULT_NOISE if DEFAULT_NOISE.is_dir() else None,
                   help="room noise recordings for (j) (default: ../shared/data/noise/ambience when present)")
    p.add_argument("--vad-recordings", type=int, default=None,
                   help="speech recordings padded in (j) (default 60)")
    return p


def run(args: argparse.Namespace) -> None:
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
        raise SerError("--device cuda was asked for, but torch sees no CUDA device here. Run "
                       "with --device auto (or cpu) to benchmark the CPU only.")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SPLITS]
    if unknown:
        raise SerError(f"--models {args.models}: no benchmark split for {', '.join(unknown)}; "
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
            print("(f) PyTorch against onnxruntime: not measured (give --ckpt RUN, a trained run)")
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
        print("(h), (i) cold start and the server under load: not measured (give --ckpt RUN, a trained run)")
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
    if "j" in args.parts:
        from ser.bench.vad import vad_figures

        for line in vad_figures(args.speech, args.noise, args.sample_rate,
                                args.vad_recordings or (4 if quick else 60), blocks_np):
            print(line, flush=True)
    gpu = (f", GPU max allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
           if use_gpu else "")
    print(f"peak memory: RSS {peak_rss_mib():.0f} MiB{gpu}; load average now {os.getloadavg()[0]:.2f}")


@report_errors
def main(argv: list[str] | None = None) -> int:
    prepare_process()
    parser = _parser()
    run(parser.parse_args(key_values(sys.argv[1:] if argv is None else argv, parser)))
    return 0
