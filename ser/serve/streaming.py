"""One live stream of raw audio bytes -> one result per hop, as ``python -m ser.listen`` prints.

A WebSocket client sends binary frames of any length (16-bit or float32 little-endian mono PCM
at its own rate); frames rarely end on a hop, or even on a sample. A :class:`StreamSession`
keeps what belongs to one connection: the bytes of a split sample, a streaming resampler to
the model's rate (state carried across frames: no seams), the samples short of the next hop,
and a :class:`~ser.inference.ring.Ring` of the last window. Its memory is fixed by the window,
however long the stream runs, and dropping the session frees it.
"""

from __future__ import annotations

import time

import numpy as np

from ser.errors import SerError
from ser.inference.ring import Ring
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import window_samples

FORMATS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}  # numpy dtype, full scale
MAX_RATE = 384_000  # Hz: above any real capture rate, so a typo is refused rather than allocated


def check_stream_settings(rate: int, fmt: str) -> None:
    """SerError (one paragraph) for a sample rate or sample format a stream cannot use."""
    if fmt not in FORMATS:
        raise SerError(f"format={fmt!r}: send s16le (16-bit little-endian PCM, the default) or "
                       "f32le (32-bit float little-endian), mono.")
    if not 1000 <= int(rate) <= MAX_RATE:
        raise SerError(f"rate={rate}: give the stream's sample rate in Hz, between 1000 and "
                       f"{MAX_RATE} (e.g. rate=16000 or rate=48000).")


class StreamSession:
    """Classify the last ``window_s`` seconds every ``hop_s`` seconds of one byte stream.

    :meth:`feed` takes raw bytes and returns the hops completed by them, each a dict like
    ``ser.listen``'s JSON lines: ``time_s`` (end of the window, stream time), ``label``,
    ``probabilities`` (class -> 0..1), ``latency_ms`` (network only), plus ``level_db`` (RMS
    dBFS of the hop's samples) for a level meter. With a speech ``gate``
    (:class:`~ser.inference.speech_gate.SpeechGate`) each result has ``speech`` (the window's
    share, 0-1), and a window with too little is labelled ``no speech`` with
    ``probabilities`` None, without running the network.
    """

    def __init__(self, predictor, rate: int | None = None, fmt: str = "s16le",
                 window_s: float | None = None, hop_s: float = 0.25, gate=None):
        self.predictor = predictor
        self.model_rate = int(predictor.sample_rate)
        self.rate = int(rate or self.model_rate)
        check_stream_settings(self.rate, fmt)
        self.dtype, self.scale = FORMATS[fmt]
        self.sample_bytes = np.dtype(self.dtype).itemsize
        self.window, self.hop = window_samples(window_s or predictor.block_seconds, hop_s,
                                               self.model_rate)
        self.classes = list(predictor.classes)
        self.ring = Ring(self.window)
        self.gate = gate
        self.activity = gate.stream(self.window) if gate is not None else None
        self.frame = np.zeros((1, self.window), np.float32)
        self._odd = b""                               # bytes of a sample split across frames
        self._pending = np.zeros(0, np.float32)       # model-rate samples short of a hop
        self._resampler = None
        if self.rate != self.model_rate:
            import soxr

            self._resampler = soxr.ResampleStream(self.rate, self.model_rate, 1, dtype="float32")

    def samples(self, data: bytes) -> np.ndarray:
        """Raw bytes -> (k,) float32 at the model's rate (a split sample waits for the next frame)."""
        data = self._odd + bytes(data)
        whole = len(data) // self.sample_bytes * self.sample_bytes
        self._odd = data[whole:]
        x = np.frombuffer(data[:whole], self.dtype).astype(np.float32) / self.scale
        if not np.all(np.isfinite(x)):
            raise SerError("The stream holds non-finite samples (NaN or infinity): send finite "
                           "PCM values, in [-1, 1] for format=f32le.")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        return x

    def feed(self, data: bytes) -> list[dict]:
        """The results of every hop completed by ``data`` (possibly none), oldest first."""
        x = self.samples(data)
        pending = np.concatenate([self._pending, x]) if self._pending.size else x
        out = []
        while pending.shape[0] >= self.hop:
            chunk, pending = pending[: self.hop], pending[self.hop:]
            self.ring.push(chunk)
            if self.activity is not None:
                self.activity.push(chunk)
            if self.ring.total >= self.window:
                out.append(self.classify(chunk))
        self._pending = np.array(pending, np.float32)  # a copy: the received frame is not kept
        return out

    def classify(self, chunk: np.ndarray) -> dict:
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
        item = {"time_s": round(self.ring.total / self.model_rate, 4),
                "level_db": round(20 * float(np.log10(max(rms, 1e-5))), 1)}
        if self.activity is not None:
            item["speech"] = round(self.activity.fraction(), 3)
            if not self.gate.speaks(item["speech"]):
                return {**item, "label": NO_SPEECH, "probabilities": None, "latency_ms": 0.0}
        self.ring.read(out=self.frame[0])
        t0 = time.perf_counter()
        p = np.asarray(self.predictor.predict_blocks(self.frame), dtype=np.float64)[0]
        ms = 1000 * (time.perf_counter() - t0)
        return {**item, "label": self.classes[int(p.argmax())],
                "probabilities": {c: round(float(v), 5) for c, v in zip(self.classes, p)},
                "latency_ms": round(ms, 2)}
