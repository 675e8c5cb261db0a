"""The hostile clients of part (i) of ``python -m ser.bench``: the requests that took
``ser.serve`` down before its limits (tiny WAVs whose header says 1 Hz, an hour of silence as
FLAC, 1-MB frames, one-sample hops, idle sockets, a crowd beyond the cap, recordings as long as
the server takes), each counted in a :class:`~ser.bench.load_report.LoadReport` by what it got.
Kept apart from :mod:`ser.bench.serve_load`, which runs the honest clients and the server, since
these only attack: none of them checks a result, they only record the answer or close code."""

from __future__ import annotations

import io
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from ser.bench.load_report import LoadReport


@dataclass
class Hostile:
    """How many of each hostile client run beside the honest ones (all at once, a second
    after the honest streams start)."""
    tiny_files: int = 45        # 164-byte WAVs whose header says 1 Hz (60 s of "audio")
    long_files: int = 4         # an hour of silence as a 181-KB FLAC
    big_frames: int = 4         # streams sending 1-MB frames (up to 150 of them)
    one_sample_hops: int = 4    # streams asking hop=0.0000625 (a network run per sample)
    idle_sockets: int = 8       # streams that connect and send nothing
    crowd: int = 200            # streams opened at once, beyond the server's cap
    full_files: int = 2         # recordings as long as the server takes (max_seconds), at once
    idle_s: float = 5.0         # the server's idle_s= for the run (idle sockets close within it)


def one_hertz_wav(samples: int = 60) -> bytes:
    """A WAV whose header says 1 Hz: ``samples`` 16-bit samples, i.e. ``samples`` seconds."""
    data = b"\0\1" * samples
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, 1, 2, 2, 16) + b"data" + struct.pack("<I", len(data)) + data)


def silent_flac(seconds: float = 3600.0, rate: int = 16000) -> bytes:
    """``seconds`` of digital silence as FLAC (an hour is about 181 KB), written a minute at a time."""
    import soundfile as sf

    out = io.BytesIO()
    minute = np.zeros(60 * rate, np.int16)
    with sf.SoundFile(out, "w", rate, 1, "PCM_16", format="FLAC") as f:
        left = int(seconds * rate)
        while left > 0:
            f.write(minute[: min(left, minute.size)])
            left -= minute.size
    return out.getvalue()


def _post_hostile(url: str, kind: str, name: str, body: bytes, report: LoadReport) -> None:
    import httpx

    try:
        status = httpx.post(f"{url}/predict", files={"file": (name, body, "audio/wav")},
                            timeout=120).status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    report.count(f"{kind} {status}", isinstance(status, str) or (status >= 500 and status != 503))


def _ws_hostile(url: str, kind: str, report: LoadReport, query: str = "", frames: int = 0,
                frame_bytes: int = 0, hold_s: float = 60.0) -> None:
    """One hostile stream: connect with ``query``, send ``frames`` frames of ``frame_bytes``,
    then wait (at most ``hold_s``) for the server to close it; counts the close code."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    code = "open"
    try:
        with connect(f"{url}/stream{query}", max_size=None, open_timeout=60) as ws:
            try:
                for _ in range(frames):
                    ws.send(b"\0" * frame_bytes)
                deadline = time.monotonic() + hold_s
                while time.monotonic() < deadline:
                    ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else "dropped"
            except TimeoutError:
                code = "still open"
    except InvalidStatus as exc:
        code = f"HTTP {exc.response.status_code}"
    except (OSError, TimeoutError) as exc:
        code = type(exc).__name__
    report.count(f"{kind} {'close ' if isinstance(code, int) else ''}{code}",
                 code in ("still open", "open", 1011))


def hostile_threads(url: str, plan: Hostile, report: LoadReport, full: bytes = b"") -> list[threading.Thread]:
    """A thread per hostile client of ``plan`` (not started): posts first (``full``: a recording
    as long as the server takes), then the streams that break the rules, then the idle ones and
    the crowd."""
    ws_url = url.replace("http", "ws", 1)
    tiny, hour = one_hertz_wav(), silent_flac()
    threads = [threading.Thread(target=_post_hostile, args=(url, "longest allowed", "full.wav", full, report))
               for _ in range(plan.full_files if full else 0)]
    threads += [threading.Thread(target=_post_hostile, args=(url, "1-Hz WAV", "tiny.wav", tiny, report))
                for _ in range(plan.tiny_files)]
    threads += [threading.Thread(target=_post_hostile, args=(url, "hour FLAC", "hour.flac", hour, report))
                for _ in range(plan.long_files)]
    threads += [threading.Thread(target=_ws_hostile, args=(ws_url, "1-MB frames", report),
                                 kwargs={"frames": 150, "frame_bytes": 1 << 20})
                for _ in range(plan.big_frames)]
    threads += [threading.Thread(target=_ws_hostile, args=(ws_url, "one-sample hop", report),
                                 kwargs={"query": "?hop=0.0000625", "frames": 1, "frame_bytes": 64000})
                for _ in range(plan.one_sample_hops)]
    threads += [threading.Thread(target=_ws_hostile, args=(ws_url, kind, report),
                                 kwargs={"hold_s": plan.idle_s + 30})
                for kind, n in (("idle socket", plan.idle_sockets), ("crowd stream", plan.crowd))
                for _ in range(n)]
    return threads
