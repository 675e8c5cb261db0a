"""What one server lets a client ask for: bytes and seconds per upload, a bounded pool of
inference workers with a bounded queue, and a cap on live streams.

FastAPI parses a multipart upload completely (spooling it to disk) before the route sees it,
so a size check in the route would come after a client had filled the disk. :class:`UploadLimit`
(ASGI middleware) refuses a declared ``Content-Length`` over the limit at once and counts the
bytes of bodies that declare none, answering 413 with the JSON error body the other routes use.

Recordings are classified in an :class:`InferencePool` of its own (``workers`` threads, sized
from the cores), never in the thread pool that serves the other routes, so ``/health`` and
``/model`` answer while every worker is busy; at most ``queue`` more uploads wait, and beyond
them a client gets 503 with ``Retry-After`` at once instead of a slot in an unbounded line.
Live streams run their hops in a :class:`StreamPool` (one thread per core), at most
``max_streams`` at a time.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a body passes the limit; turned into a 413 response
    (here, or by the app's error handler when the form parser wrapped it)."""


def too_large_message(size: int, limit: int) -> str:
    return (f"The upload is larger than this server accepts ({size / 2**20:.1f} MiB > "
            f"{limit / 2**20:g} MiB). Send a shorter recording or a compressed one (flac, ogg, "
            "mp3), or start the server with a larger max_upload_mb=.")


_TRIM: list = []


def give_back_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). After a long upload, its freed arrays would otherwise stay in the process: glibc
    keeps freed blocks below its mmap threshold (which rises to 32 MB as large blocks come and
    go) in the heap of the thread that used them."""
    if not _TRIM:
        import ctypes
        import ctypes.util
        import sys

        trim = None
        if sys.platform.startswith("linux"):
            try:
                trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc
                trim = None
        _TRIM.append(trim)
    if _TRIM[0] is not None:
        _TRIM[0](0)


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Limits:
    """Every limit of one server (``ser-serve`` keys of the same names; None: from the cores).

    ``max_upload_mb`` MiB and ``max_seconds`` s per upload; ``workers`` threads classify
    uploads (None: half the cores, at least 1) and ``queue`` more may wait (None: 8 per
    worker); ``max_streams`` live streams at once (None: 16 per core, at least 16), each
    closed after ``idle_s`` s without audio and refused a frame holding more than
    ``stream_buffer_s`` s of audio; ``max_frame_mb`` MiB per WebSocket message, for the
    protocol itself (uvicorn's ``ws_max_size``)."""

    max_upload_mb: float = 20.0
    max_seconds: float = 600.0
    workers: int | None = None
    queue: int | None = None
    max_streams: int | None = None
    idle_s: float = 30.0
    stream_buffer_s: float = 10.0
    max_frame_mb: float = 2.0

    def resolved(self) -> "Limits":
        """The same limits with every None replaced by the number it stands for here."""
        n = cores()
        workers = self.workers or max(1, n // 2)
        return replace(self, workers=workers, queue=8 * workers if self.queue is None else self.queue,
                       max_streams=self.max_streams or max(16, 16 * n))

    def describe(self) -> dict:
        """The limits as ``GET /model`` reports them."""
        r = self.resolved()
        return {"max_upload_mb": r.max_upload_mb, "max_seconds": r.max_seconds, "workers": r.workers,
                "queue": r.queue, "max_streams": r.max_streams, "idle_s": r.idle_s,
                "stream_buffer_s": r.stream_buffer_s}


class Slots:
    """At most ``capacity`` holders at once: :meth:`take` says whether one more fits (and counts
    it), :meth:`give` frees one. Thread-safe; uploads and streams each keep one."""

    def __init__(self, capacity: int):
        self.capacity, self.taken = int(capacity), 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.capacity:
                return False
            self.taken += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.taken -= 1


class InferencePool:
    """``workers`` threads and a count of the jobs admitted (running or waiting), at most
    ``workers + queue``. :meth:`try_admit` says whether one more fits; an admitted job is
    :meth:`submit`-ted and counts until it has run, even when its client has gone."""

    def __init__(self, workers: int, queue: int, name: str = "ser-inference"):
        self.workers = int(workers)
        self.slots = Slots(self.workers + int(queue))
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._mean_s = 1.0  # running mean of a job's seconds, for Retry-After

    @property
    def capacity(self) -> int:
        return self.slots.capacity

    @property
    def admitted(self) -> int:
        return self.slots.taken

    def try_admit(self) -> bool:
        return self.slots.take()

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on a worker (after :meth:`try_admit` said yes)."""
        started = time.monotonic()

        def done(_: Future) -> None:
            self.slots.give()
            with self._lock:
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)
        try:
            future = self.executor.submit(fn, *args)
        except RuntimeError:  # shut down
            done(Future())
            raise
        future.add_done_callback(done)
        return future

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the queue's length in mean jobs, 1 to 120."""
        waiting = self._mean_s * self.slots.taken / self.workers
        return int(min(120, max(1, math.ceil(waiting))))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class StreamPool:
    """At most ``max_streams`` live streams (:meth:`try_enter`/:meth:`leave`) whose hops run on
    one thread per core, apart from the uploads' workers."""

    def __init__(self, max_streams: int, threads: int | None = None):
        self.slots = Slots(max_streams)
        self.executor = ThreadPoolExecutor(threads or cores(), thread_name_prefix="ser-stream")

    @property
    def capacity(self) -> int:
        return self.slots.capacity

    @property
    def open(self) -> int:
        return self.slots.taken

    def try_enter(self) -> bool:
        return self.slots.take()

    def leave(self) -> None:
        self.slots.give()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class UploadLimit:
    """Pure ASGI middleware: HTTP bodies larger than ``limit`` bytes get 413."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(send, int(declared))
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(too_large_message(seen, self.limit))
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self.refuse(send, seen)

    async def refuse(self, send, size: int) -> None:
        body = json.dumps({"status": 413, "error": too_large_message(size, self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
