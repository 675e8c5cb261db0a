"""``ser-bench [parts=de] [quick=true] [ckpt=RUN]`` / ``python -m ser.bench``: how fast images
are made and models trained, against the usual ways. What each part measures:
:mod:`ser.bench`, which runs them; ``--help`` lists every key."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

from ser.cli import Key, Spec, choice, number, optional, parse, prepare_process, report_errors, switch

COMMAND = "ser.bench"
DEFAULT_SPEECH = Path("..") / "shared" / "data" / "urdu"  # from the project folder, installed or not
DEFAULT_NOISE = Path("..") / "shared" / "data" / "noise" / "ambience"
COUNT = optional(number(int, least=0))  # empty or 0: the part's own default
SPEC = Spec("images/s and training speed against the usual ways; ONNX, cold start, the server "
            "under load, the speech detectors", (
    Key("quick", False, "tiny sizes, for tests (a few seconds)", switch),
    Key("parts", "abcdef", "which parts to run, e.g. de (g-k are not in the default)"),
    Key("blocks", None, "blocks for (b)/(c) (empty: 512)", COUNT),
    Key("reference_blocks", None, "blocks for (a) (empty: 48)", COUNT),
    Key("repeats", None, "timed runs per figure (empty: 5)", COUNT),
    Key("batch_size", 128, "blocks per call and per training step", number(int, least=1)),
    Key("train_steps", None, "timed training steps, and batches per epoch in (e) (empty: 3)", COUNT),
    Key("workers", None, "DataLoader workers of the ImageFolder way in (d) (empty: the CPU "
        "cores, at most 4)", COUNT),
    Key("device", "auto", "auto: also (c) and GPU training when CUDA is available",
        choice("auto", "cpu", "cuda")),
    Key("speech", None, f"folder of speech recordings (empty: {DEFAULT_SPEECH} when present, "
        "else generated speech-like audio)", optional(Path)),
    Key("compile", "auto", "also time torch.compile'd pipelines (auto: on unless quick)",
        choice("auto", "on", "off")),
    Key("trunk_chunk", 32, "images per pass through the frozen layers on the CPU (0: the whole "
        "batch)", number(int, least=0)),
    Key("models", "alexnet,efficientnet_lite0", "backbones for (d) and (e)"),
    Key("sample_rate", 16000, "sample rate of the blocks", number(int, least=1, unit="Hz")),
    Key("encoders", "wavlm,hubert,wav2vec2", "speech encoder families for (g)"),
    Key("encoder_batch", 8, "1-s blocks per training step in (g)", number(int, least=1)),
    Key("ckpt", None, "a trained run or .ckpt: (f) its blocks/s in PyTorch and onnxruntime, (h) "
        "cold start, (i) the server under load", optional(str)),
    Key("cold_runs", None, "fresh processes per figure in (h) (empty: 5)", COUNT),
    Key("load_streams", None, "WebSocket streams at once in (i) (empty: 8)", COUNT),
    Key("load_seconds", None, "seconds each stream runs in (i) (empty: 60)",
        optional(number(float, above=0, unit="seconds"))),
    Key("load_uploads", None, "uploads to /predict in (i) (empty: 200)", COUNT),
    Key("noise", None, f"room noise recordings for (j) (empty: {DEFAULT_NOISE} when present)",
        optional(Path)),
    Key("vad_recordings", None, "speech recordings padded in (j) (empty: 60)", COUNT),
))


@report_errors
def main(argv: list[str] | None = None) -> int:
    prepare_process()
    args = parse(sys.argv[1:] if argv is None else argv, SPEC, COMMAND)
    for key, folder in (("speech", DEFAULT_SPEECH), ("noise", DEFAULT_NOISE)):
        if args[key] is None and folder.is_dir():
            args[key] = folder
    from ser.bench import run

    run(SimpleNamespace(**args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
