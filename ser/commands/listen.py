"""``ser-listen`` / ``python -m ser.listen ckpt=RUN [source=mic|FILE|-] [hop=0.25] [window=]
[jsonl=PATH] [realtime=true] [rate=16000] [vad=auto] [min_speech=0.5] [min_confidence=]``

Live emotion recognition: every ``hop`` seconds the last ``window`` seconds of audio (the
model's block length by default) are classified and one line is printed: stream time (s, end
of the window), leading emotion, every class's probability and the compute latency (ms).
With a speech gate (``vad=auto``, the default, when ``ser[vad]`` is installed; see
:mod:`ser.inference.speech_gate`) a window with less than ``min_speech`` speech prints
``no speech`` and its share of speech instead, and the network does not run for it. With
``min_confidence=0.6``, a window whose top probability is below it prints ``unsure`` (its
probabilities still follow).

Sources: ``mic`` (default input device, needs ``pip install 'ser[listen]'``), an audio FILE
played at real time (``realtime=false``: as fast as possible), or ``-``: raw 16-bit
little-endian mono PCM on stdin at ``rate=`` Hz (16000 by default; resampled to the model's).

When the stream ends, a partial hop (less than ``hop`` seconds, or a dangling odd byte) is
dropped, not classified, so every printed window holds real audio only; a stream shorter than
one window is classified once, zero-padded. The exit status is 0 then, 2 for a SerError.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from ser.cli import Key, Spec, number, optional, parse, report_errors, switch
from ser.commands.keys import HOP, MIN_CONFIDENCE, MIN_SPEECH, MODEL, VAD, WINDOW
from ser.errors import SerError
from ser.inference.live import (file_chunks, microphone_library, open_microphone, resampled,
                                stdin_chunks, stream)
from ser.inference.windows import UNSURE, window_samples

COMMAND = "ser.listen"
SPEC = Spec("classify the microphone (or a file, or raw PCM on stdin) live, a line per hop", (
    MODEL,
    Key("source", "mic", "mic (the default input device), an audio FILE, or - (raw 16-bit PCM "
        "on stdin)"),
    HOP,
    WINDOW,
    Key("jsonl", None, "also write each hop as a JSON line to this file", optional(str)),
    Key("realtime", True, "play a FILE at real time (false: as fast as possible)", switch),
    Key("rate", 16000, "sample rate of the PCM on stdin (source=-)", number(int, least=1, unit="Hz")),
    VAD,
    MIN_SPEECH,
    MIN_CONFIDENCE,
))


def hop_line(item: dict) -> str:
    speech = f"  speech {100 * item['speech']:3.0f}%" if "speech" in item else ""
    if item["probabilities"] is None:
        return f"{item['time_s']:8.2f} s  {item['label']:<8}{speech}"
    probs = "  ".join(f"{c} {p:.2f}" for c, p in item["probabilities"].items())
    return f"{item['time_s']:8.2f} s  {item['label']:<8}  {probs}  {item['latency_ms']:6.1f} ms{speech}"


def listen(argv: list[str], stdin: IO[bytes] | None = None) -> dict:
    """What ``python -m ser.listen`` does; returns the summary of :func:`stream`."""
    from ser.audio.io import load_audio
    from ser.inference.predictor import load_predictor, warm_up
    from ser.inference.speech_gate import inference_gate
    from ser.inference.windows import model_threshold, resolve_min_confidence

    args = parse(argv, SPEC, COMMAND)
    source = args["source"]
    if source not in ("mic", "-") and not Path(source).expanduser().is_file():
        raise SerError(f"source={source}: no such file. Use source=mic (the default microphone), "
                       "source=FILE (an audio file) or source=- (raw 16-bit PCM on stdin).")
    mic = microphone_library() if source == "mic" else None
    predictor = load_predictor(args["ckpt"])
    threshold = resolve_min_confidence(args["min_confidence"], model_threshold(predictor))
    rate = int(predictor.sample_rate)
    gate = inference_gate(args["vad"], args["min_speech"], rate)
    window, hop = window_samples(args["window"] or predictor.block_seconds, args["hop"], rate)
    if source == "mic":
        chunks: Iterable[np.ndarray] = open_microphone(mic, rate, hop)
        what = "the default microphone"
    elif source == "-":
        chunks = resampled(stdin_chunks(stdin or sys.stdin.buffer, hop), args["rate"], rate)
        what = f"16-bit PCM on stdin at {args['rate']} Hz"
    else:
        audio = load_audio(Path(source).expanduser(), rate)
        chunks = file_chunks(audio, rate, hop, args["realtime"])
        what = f"{source} ({audio.shape[0] / rate:.2f} s{', real time' if args['realtime'] else ''})"
    warm_up(predictor, window)  # first-call costs before the first hop, not on it
    print(f"listening to {what}: {window / rate:g}-s window every {hop / rate:g} s, classes "
          f"{', '.join(predictor.classes)}" + (f"; speech gate {gate.describe()}" if gate else "")
          + (f"; {UNSURE} below {threshold:g}" if threshold else "")
          + "; Ctrl-C stops", file=sys.stderr, flush=True)
    out = open(args["jsonl"], "w") if args["jsonl"] else None

    def emit(item: dict) -> None:
        print(hop_line(item), flush=True)
        if out is not None:
            out.write(json.dumps(item) + "\n")
            out.flush()
    try:
        summary = stream(predictor, chunks, window, hop, emit, gate, threshold)
    except KeyboardInterrupt:
        summary = None
    finally:
        if out is not None:
            out.close()
    if summary is not None:
        lat = np.array(summary["latencies_ms"] or [np.nan])
        tail = (f"; the last {summary['dropped_s']:.3f} s (less than one hop) was dropped"
                if summary["dropped_s"] else "")
        pad = "; shorter than one window: classified once, zero-padded" if summary["padded"] else ""
        if summary["no_speech"]:
            pad += f"; {summary['no_speech']} without enough speech (no speech)"
        if summary["unsure"]:
            pad += f"; {summary['unsure']} below min_confidence ({UNSURE})"
        print(f"stream ended: {summary['windows']} window(s), latency median "
              f"{np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms{tail}{pad}",
              file=sys.stderr, flush=True)
    return summary or {}


@report_errors
def main(argv: list[str] | None = None) -> None:
    listen(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
