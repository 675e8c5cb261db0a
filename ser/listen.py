"""``python -m ser.listen ckpt=RUN [source=mic|FILE|-] [hop=0.25] [window=] [jsonl=PATH] [realtime=true]
[vad=auto] [min_speech=0.5]``

Live emotion recognition: every ``hop`` seconds the last ``window`` seconds of audio (the
model's block length by default) are classified and one line is printed: stream time (s, end
of the window), leading emotion, every class's probability and the compute latency (ms).
With a speech gate (``vad=auto``, the default, when ``ser[vad]`` is installed; see
:mod:`ser.inference.speech_gate`) a window with less than ``min_speech`` speech prints
``no speech`` and its share of speech instead, and the network does not run for it.

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
import time
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

import numpy as np

from ser.cli import key_value_words, report_errors
from ser.errors import SerError
from ser.inference.ring import Ring
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import window_samples

DEFAULTS = {"ckpt": None, "source": "mic", "hop": "0.25", "window": None, "jsonl": None,
            "realtime": "true", "rate": "16000", "vad": "auto", "min_speech": None}
PIP_HINT = "pip install 'ser[listen]' (or pip install sounddevice)"


def parse_args(argv: list[str]) -> dict:
    """``key=value`` words -> settings (hop/window in s, realtime bool, rate in Hz)."""
    args = key_value_words(argv, DEFAULTS, "ser.listen",
                           ", e.g. python -m ser.listen ckpt=RUN source=talk.wav.")
    if not args["ckpt"]:
        raise SerError("ser.listen needs the model: ckpt=RUN (a run directory written by train.py, "
                       "a .ckpt file or an exported .onnx file).")
    try:
        args["hop"] = float(args["hop"] or 0.25)
        args["window"] = float(args["window"]) if args["window"] else None
        args["rate"] = int(args["rate"] or 16000)
    except ValueError as exc:
        raise SerError(f"hop=, window= take seconds and rate= Hz as numbers ({exc}).") from exc
    flag = str(args["realtime"]).lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise SerError(f"realtime={args['realtime']}: use realtime=true or realtime=false.")
    args["realtime"] = flag in ("true", "1", "yes")
    return args


def microphone_library():
    """The sounddevice module once it is importable and sees an input device (else SerError):
    checked before the model loads, so a missing microphone is reported at once."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the package is there but PortAudio is not
        raise SerError(f"source=mic needs the sounddevice package and the PortAudio library "
                       f"({type(exc).__name__}: {exc}). Install them with {PIP_HINT}, or classify "
                       "a file (source=talk.wav) or raw PCM on stdin (source=-).") from exc
    try:
        sd.query_devices(kind="input")
    except Exception as exc:
        raise SerError(f"No audio input device ({type(exc).__name__}: {exc}). Connect or enable a "
                       "microphone (python -m sounddevice lists the devices), or classify a file "
                       "(source=talk.wav) or raw PCM on stdin (source=-).") from exc
    return sd


def open_microphone(sd, rate: int, hop: int) -> Iterator[np.ndarray]:
    """(hop,) float32 chunks from the default input device at ``rate`` Hz, until Ctrl-C."""
    try:
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=hop)
    except Exception as exc:
        raise SerError(f"No usable audio input device ({type(exc).__name__}: {exc}). Connect or "
                       "enable a microphone (python -m sounddevice lists the devices), or "
                       "classify a file (source=talk.wav) or raw PCM on stdin (source=-).") from exc

    def chunks() -> Iterator[np.ndarray]:
        with stream:
            while True:
                data, _ = stream.read(hop)
                yield np.asarray(data, np.float32)[:, 0].copy()
    return chunks()


def stdin_chunks(pipe: IO[bytes], hop: int) -> Iterator[np.ndarray]:
    """(<= hop,) float32 chunks of raw int16 little-endian PCM; an odd last byte is dropped."""
    while True:
        data = pipe.read(2 * hop)
        if not data:
            return
        yield np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0


def file_chunks(audio: np.ndarray, rate: int, hop: int, realtime: bool) -> Iterator[np.ndarray]:
    """A decoded recording in (hop,) chunks, each released when it would have been heard."""
    start = time.perf_counter()
    for i in range(0, audio.shape[0], hop):
        if realtime:
            time.sleep(max(0.0, start + (i + hop) / rate - time.perf_counter()))
        yield audio[i: i + hop]


def resampled(chunks: Iterable[np.ndarray], rate_in: int, rate_out: int) -> Iterator[np.ndarray]:
    """Stream-resample chunks with soxr (state carried across chunks: no seams)."""
    if rate_in == rate_out:
        yield from chunks
        return
    import soxr

    resampler = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")
    for chunk in chunks:
        yield resampler.resample_chunk(chunk)
    yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def rechunk(chunks: Iterable[np.ndarray], hop: int) -> Iterator[np.ndarray]:
    """Chunks of any size -> exactly (hop,) chunks, then the shorter remainder (if any)."""
    pending = np.zeros(0, np.float32)
    for chunk in chunks:
        pending = np.concatenate([pending, chunk]) if pending.size else np.asarray(chunk, np.float32)
        while pending.shape[0] >= hop:
            yield pending[:hop]
            pending = pending[hop:]
    if pending.size:
        yield pending


def stream(predictor, chunks: Iterable[np.ndarray], window: int, hop: int,
           emit: Callable[[dict], None], gate=None) -> dict:
    """Classify the last ``window`` samples after every ``hop`` samples; ``emit`` gets a dict per
    hop (time_s, label, probabilities, latency_ms; with a ``gate``, ``speech`` (0-1) and
    ``vad_ms``, and label ``no speech`` with probabilities None for a window without enough
    speech). Returns a summary with the latencies (ms), the dropped tail (s) and whether a short
    stream was padded."""
    rate, classes = int(predictor.sample_rate), list(predictor.classes)
    ring, frame = Ring(window), np.zeros((1, window), np.float32)
    activity = gate.stream(window) if gate is not None else None
    latencies: list[float] = []
    summary = {"windows": 0, "dropped_s": 0.0, "padded": False, "latencies_ms": latencies,
               "no_speech": 0}

    def classify(block: np.ndarray, end: int, speech: float | None = None, vad_ms: float = 0.0) -> None:
        summary["windows"] += 1
        gated = {} if speech is None else {"speech": round(speech, 3), "vad_ms": round(vad_ms, 3)}
        if speech is not None and not gate.speaks(speech):
            summary["no_speech"] += 1
            emit({"time_s": round(end / rate, 4), "label": NO_SPEECH, "probabilities": None,
                  "latency_ms": 0.0, **gated})
            return
        t0 = time.perf_counter()
        p = np.asarray(predictor.predict_blocks(block), dtype=np.float64)[0]
        ms = 1000 * (time.perf_counter() - t0)
        latencies.append(ms)
        emit({"time_s": round(end / rate, 4), "label": classes[int(p.argmax())],
              "probabilities": {c: round(float(v), 5) for c, v in zip(classes, p)},
              "latency_ms": round(ms, 2), **gated})

    for chunk in rechunk(chunks, hop):
        if chunk.shape[0] < hop and ring.total >= window:
            summary["dropped_s"] = chunk.shape[0] / rate  # a partial hop: not classified
            break
        ring.push(chunk)
        speech, vad_ms = None, 0.0
        if activity is not None:
            t0 = time.perf_counter()
            activity.push(chunk)
            speech = activity.fraction()
            vad_ms = 1000 * (time.perf_counter() - t0)
        if ring.total >= window and chunk.shape[0] == hop:
            ring.read(out=frame[0])
            classify(frame, ring.total, speech, vad_ms)
    if summary["windows"] == 0 and ring.total:  # shorter than one window: classify it once, padded
        frame[:] = 0
        frame[0, : ring.filled] = ring.latest(ring.filled)
        summary["padded"] = ring.total < window
        speech = None if gate is None else float(gate.fractions(frame[0], np.zeros(1, np.int64), window)[0])
        classify(frame, ring.total, speech)
    return summary


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

    args = parse_args(argv)
    source = args["source"] or "mic"
    if source not in ("mic", "-") and not Path(source).expanduser().is_file():
        raise SerError(f"source={source}: no such file. Use source=mic (the default microphone), "
                       "source=FILE (an audio file) or source=- (raw 16-bit PCM on stdin).")
    mic = microphone_library() if source == "mic" else None
    predictor = load_predictor(args["ckpt"])
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
          + "; Ctrl-C stops", file=sys.stderr, flush=True)
    out = open(args["jsonl"], "w") if args["jsonl"] else None

    def emit(item: dict) -> None:
        print(hop_line(item), flush=True)
        if out is not None:
            out.write(json.dumps(item) + "\n")
            out.flush()
    try:
        summary = stream(predictor, chunks, window, hop, emit, gate)
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
        print(f"stream ended: {summary['windows']} window(s), latency median "
              f"{np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms{tail}{pad}",
              file=sys.stderr, flush=True)
    return summary or {}


@report_errors
def main(argv: list[str] | None = None) -> None:
    listen(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
