"""A live stream classified hop by hop, as ``ser-listen`` (:mod:`ser.commands.listen`) prints
it: where the audio comes from (the microphone, raw PCM on stdin, a file at real time), its
chunks resampled and cut into hops, and :func:`stream`, which classifies the last window after
every hop, behind the speech gate when there is one, and labels a window ``unsure`` when its
top probability is below ``min_confidence``.

When the stream ends, a partial hop (less than ``hop`` samples, or a dangling odd byte) is
dropped, not classified, so every window holds real audio only; a stream shorter than one
window is classified once, zero-padded.
"""

from __future__ import annotations

import time
from typing import IO, Callable, Iterable, Iterator

import numpy as np

from ser.errors import SerError
from ser.inference.ring import Ring
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import UNSURE, window_label

PIP_HINT = "pip install 'ser[listen]' (or pip install sounddevice)"


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
           emit: Callable[[dict], None], gate=None, min_confidence: float | None = None) -> dict:
    """Classify the last ``window`` samples after every ``hop`` samples; ``emit`` gets a dict per
    hop (time_s, label, probabilities, latency_ms; with a ``gate``, ``speech`` (0-1) and
    ``vad_ms``, and label ``no speech`` with probabilities None for a window without enough
    speech; with ``min_confidence``, label ``unsure`` for a window whose top probability is
    below it, its probabilities kept). Returns a summary with the latencies (ms), the dropped
    tail (s), whether a short stream was padded and how many windows had no speech or were
    unsure."""
    rate, classes = int(predictor.sample_rate), list(predictor.classes)
    ring, frame = Ring(window), np.zeros((1, window), np.float32)
    activity = gate.stream(window) if gate is not None else None
    latencies: list[float] = []
    summary = {"windows": 0, "dropped_s": 0.0, "padded": False, "latencies_ms": latencies,
               "no_speech": 0, "unsure": 0}

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
        label = window_label(p, classes, min_confidence)
        summary["unsure"] += int(label == UNSURE)
        emit({"time_s": round(end / rate, 4), "label": label,
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
