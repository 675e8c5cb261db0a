"""One live stream of raw audio bytes -> one result per hop, as ``python -m ser.listen`` prints.

A WebSocket client sends binary frames of any length (16-bit or float32 little-endian mono PCM
at its own rate); frames rarely end on a hop, or even on a sample. A :class:`StreamSession`
keeps what belongs to one connection: the bytes of a split sample, a streaming resampler to
the model's rate (state carried across frames: no seams), the samples short of the next hop,
and a :class:`~ser.inference.ring.Ring` of the last window. Its memory is fixed by the window,
however long the stream runs, and dropping the session frees it.

What a client may ask for is bounded, so that no stream costs more than a few times the
default's work or memory: a sample rate of 8-192 kHz (:data:`RATE_RANGE`), a hop of 0.05-5 s
(:data:`HOP_RANGE`: at most 20 network runs per second of audio), and frames holding at most
``max_buffer_s`` seconds of audio (:class:`StreamOverflow` beyond it). A client may also set
its own abstention threshold, ``min_confidence`` (:func:`min_confidence_setting`): a window whose
top probability is below it is labelled ``unsure``.
"""

from __future__ import annotations

import math
import time
from typing import Mapping

import numpy as np

from ser.audio.io import MAX_ABS, MAX_RATE, MIN_RATE
from ser.errors import SerError
from ser.inference.ring import Ring
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.windows import resolve_min_confidence, window_label, window_samples

FORMATS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}  # numpy dtype, full scale
RATE_RANGE = (MIN_RATE, MAX_RATE)   # Hz a stream may be sent at, as a recording's header
HOP_RANGE = (0.05, 5.0)             # s between results: at most 20 network runs per second of audio
DEFAULT_BUFFER_S = 10.0             # s of audio one frame may hold


class StreamOverflow(SerError):
    """A frame holding more audio than a stream may have waiting (close code 1009)."""


def check_stream_settings(rate: int, fmt: str, hop_s: float | None = None) -> None:
    """SerError (one paragraph) for a sample rate, sample format or hop a stream cannot use."""
    if fmt not in FORMATS:
        raise SerError(f"format={fmt!r}: send s16le (16-bit little-endian PCM, the default) or "
                       "f32le (32-bit float little-endian), mono.")
    if not RATE_RANGE[0] <= int(rate) <= RATE_RANGE[1]:
        raise SerError(f"rate={rate}: give the stream's sample rate in Hz, an integer from "
                       f"{RATE_RANGE[0]} to {RATE_RANGE[1]} (e.g. rate=16000 or rate=48000).")
    if hop_s is not None and not (math.isfinite(hop_s) and HOP_RANGE[0] <= hop_s <= HOP_RANGE[1]):
        raise SerError(f"hop={hop_s:g}: give the seconds between results, a number from "
                       f"{HOP_RANGE[0]:g} to {HOP_RANGE[1]:g} (e.g. hop=0.25).")


def shown(text: str) -> str:
    """A client's value as an error message quotes it: as given when short and plain, else its
    repr, cut to 30 characters (a message stays one line)."""
    return text if len(text) <= 30 and text.isprintable() and "'" not in text else repr(text[:30])


def stream_settings(query: Mapping[str, str], model_rate: int, default_hop: float) -> tuple[int, str, float]:
    """``(rate, format, hop)`` of a ``/stream`` URL's query (absent or empty: the model's rate,
    s16le, the server's hop); SerError for text that is not one, non-finite numbers, explicit
    zeros and values out of :data:`RATE_RANGE` or :data:`HOP_RANGE`."""
    rate_text = (query.get("rate") or "").strip()
    hop_text = (query.get("hop") or "").strip()
    fmt = (query.get("format") or "s16le").strip().lower()
    rate = model_rate
    if rate_text:
        try:
            rate = int(rate_text)
        except ValueError:
            raise SerError(f"rate={shown(rate_text)}: give the stream's sample rate in Hz, an integer from "
                           f"{RATE_RANGE[0]} to {RATE_RANGE[1]} (e.g. rate=16000).") from None
    hop = default_hop
    if hop_text:
        try:
            hop = float(hop_text)
        except ValueError:
            hop = math.nan
        if not (math.isfinite(hop) and HOP_RANGE[0] <= hop <= HOP_RANGE[1]):
            raise SerError(f"hop={shown(hop_text)}: give the seconds between results, a finite number "
                           f"from {HOP_RANGE[0]:g} to {HOP_RANGE[1]:g} (e.g. hop=0.25).")
    check_stream_settings(rate, fmt, hop)
    return rate, fmt, hop


def min_confidence_setting(text: str | None, default: float | None,
                           model: float | None = None) -> float | None:
    """A request's ``min_confidence`` (a query parameter or form field): absent or empty, the
    server's ``default``; ``none``: no threshold; ``model``: the model's own (``model``); else a
    probability above 0 and below 1. SerError of one line for anything else (0, 1, nan, text)."""
    if text is None or not str(text).strip():
        return default
    return resolve_min_confidence(str(text), model)


class StreamSession:
    """Classify the last ``window_s`` seconds every ``hop_s`` seconds of one byte stream.

    :meth:`feed` takes raw bytes and returns the hops completed by them, each a dict like
    ``ser.listen``'s JSON lines: ``time_s`` (end of the window, stream time), ``label``,
    ``probabilities`` (class -> 0..1), ``latency_ms`` (network only), plus ``level_db`` (RMS
    dBFS of the hop's samples) for a level meter. With a speech ``gate``
    (:class:`~ser.inference.speech_gate.SpeechGate`) each result has ``speech`` (the window's
    share, 0-1), and a window with too little is labelled ``no speech`` with
    ``probabilities`` None, without running the network. With ``min_confidence`` (0-1), a
    window whose top probability is below it is labelled ``unsure``, its probabilities kept.
    """

    def __init__(self, predictor, rate: int | None = None, fmt: str = "s16le",
                 window_s: float | None = None, hop_s: float = 0.25, gate=None,
                 max_buffer_s: float = DEFAULT_BUFFER_S, min_confidence: float | None = None):
        self.predictor = predictor
        self.model_rate = int(predictor.sample_rate)
        self.rate = int(rate or self.model_rate)
        check_stream_settings(self.rate, fmt, hop_s)
        self.dtype, self.scale = FORMATS[fmt]
        self.sample_bytes = np.dtype(self.dtype).itemsize
        self.max_buffer_s = float(max_buffer_s)
        self.max_bytes = int(self.max_buffer_s * self.rate) * self.sample_bytes
        self.window, self.hop = window_samples(window_s or predictor.block_seconds, hop_s,
                                               self.model_rate)
        self.classes = list(predictor.classes)
        self.ring = Ring(self.window)
        self.gate = gate
        self.min_confidence = min_confidence
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
        if not np.all(np.abs(x) <= MAX_ABS):  # NaN and infinity included
            raise SerError(f"The stream holds non-finite samples (NaN or infinity, or beyond "
                           f"±{MAX_ABS:g}): send finite PCM values, in [-1, 1] for format=f32le.")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        return x

    def feed(self, data: bytes) -> list[dict]:
        """The results of every hop completed by ``data`` (possibly none), oldest first;
        :class:`StreamOverflow` for a frame holding more than ``max_buffer_s`` s of audio."""
        if len(self._odd) + len(data) > self.max_bytes:
            seconds = len(data) / (self.sample_bytes * self.rate)
            raise StreamOverflow(f"A frame of {len(data)} bytes holds {seconds:.1f} s of audio at this "
                                 f"stream's rate and format, more than the {self.max_buffer_s:g} s a "
                                 "stream may send at once: send smaller frames (a hop's worth, e.g. "
                                 "0.25 s, is what a live stream needs).")
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
        return {**item, "label": window_label(p, self.classes, self.min_confidence),
                "probabilities": {c: round(float(v), 5) for c, v in zip(self.classes, p)},
                "latency_ms": round(ms, 2)}
