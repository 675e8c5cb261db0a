"""The ASGI application of ``python -m ser.serve``: one loaded model behind HTTP and WebSocket.

Routes (JSON everywhere, errors as ``{"error": "<one paragraph>", "status": <code>}``):

- ``POST /predict``: a recording as the multipart field ``file`` (wav, flac, ogg, mp3) ->
  the JSON of ``python -m ser.predict output=json`` (blocks, whole-recording emotion, timeline);
- ``WS /stream?rate=16000&format=s16le|f32le[&hop=0.25]``: binary frames of mono PCM -> one
  JSON message per hop, as ``ser.listen`` prints; every connection has its own ring buffer;
- both take ``min_confidence`` (a form field or query parameter on /predict, a query parameter
  on /stream; the server's ``min_confidence`` when absent): a window or block whose top
  probability is below it is labelled ``unsure``, its probabilities kept;
- ``GET /health``, ``GET /model`` (classes, rate, window, hop, the limits, the file and run
  it came from);
- ``GET /`` the live page (``ser/serve/static``), ``/docs`` the OpenAPI page (its scripts
  served from here: it works without internet).

Who may call them: :mod:`ser.serve.access` (Host, Origin, token). What one call may cost:
:mod:`ser.serve.limits`. An upload is classified from the request's own spooled body, decoded
once, in the inference pool (never on the event loop, never in the threads that answer
``/health``); a bad one gets 400, 413 (bytes or ``max_seconds``) or 422, a full queue 503 with
``Retry-After``; a bad ``min_confidence`` 422. A stream with bad settings (``min_confidence``
included) gets one ``{"error"}`` message and close code 1008 after the handshake; a frame
holding too much audio 1009, too many streams 1013, no audio for ``idle_s`` seconds 1008,
non-finite samples 1003. No client-supplied path is ever opened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from importlib import resources
from pathlib import Path
from typing import Iterable

from fastapi import File, Form, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from ser.audio.io import AudioTooLong
from ser.errors import SerError
from ser.inference.recordings import predict_upload
from ser.inference.windows import MODEL_THRESHOLD, model_threshold, resolve_min_confidence
from ser.serve.access import Access, Guard, subprotocol
from ser.serve.limits import (BodyTooLarge, InferencePool, Limits, StreamPool, UploadLimit,
                              give_back_memory)
from ser.serve.streaming import (StreamOverflow, StreamSession, check_stream_settings,
                                 min_confidence_setting, stream_settings)

STATIC = resources.files("ser.serve") / "static"
LOG = logging.getLogger("ser.serve")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def error_body(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message, "status": status}).encode()


def model_info(predictor, hop_s: float, gate=None, limits: Limits | None = None,
               min_confidence: float | None = None) -> dict:
    """What ``GET /model`` says: classes, rates and lengths (Hz, s), the speech gate and the
    default abstention threshold, the limits, and where the model came from (file and run
    folder names only: the server's own paths stay private)."""
    path = getattr(predictor, "path", None)
    kind = "onnx" if path is not None and Path(path).suffix.lower() == ".onnx" else "checkpoint"
    run = None
    if path is not None and kind == "checkpoint":
        from ser.run_layout import run_dir_of

        run = run_dir_of(Path(path)).name
    return {"classes": list(predictor.classes), "sample_rate": int(predictor.sample_rate),
            "window_s": float(predictor.block_seconds), "hop_s": hop_s,
            "block_seconds": float(predictor.block_seconds), "kind": kind,
            "model_file": Path(path).name if path is not None else None, "run": run,
            "speech_gate": None if gate is None else gate.describe(),
            "min_confidence": min_confidence,
            "limits": (limits or Limits()).describe()}


def upload_name(filename: str | None) -> str:
    """The name an upload is called by in answers: the last part of the client's file name,
    printable, at most 120 characters (it is never used as a path)."""
    name = Path((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable())[:120]
    return name or "upload"


def create_app(predictor, token: str | None = None, max_upload_mb: float = 20.0,
               hop_s: float = 0.25, gate=None, allowed_origins: Iterable[str] = (),
               allowed_hosts: Iterable[str] = (), min_confidence: float | str | None = MODEL_THRESHOLD,
               **limits) -> FastAPIOffline:
    """The application around one loaded ``predictor`` (see :mod:`ser.inference.predictor`);
    ``gate`` (a :class:`~ser.inference.speech_gate.SpeechGate` or None) marks windows and
    blocks without enough speech ``no speech`` in /predict and /stream; ``min_confidence``
    (0-1, None: off; ``model``: the threshold the run chose on its validation part) is the
    abstention threshold of a request that sets none. ``limits``: the other
    fields of :class:`~ser.serve.limits.Limits` (``max_seconds``, ``workers``, ``queue``,
    ``max_streams``, ``idle_s``, ``stream_buffer_s``)."""
    settings = Limits(max_upload_mb=max_upload_mb, **limits).resolved()
    check_stream_settings(int(predictor.sample_rate), "s16le", hop_s)
    own = model_threshold(predictor)
    min_confidence = resolve_min_confidence(min_confidence, own)
    app = FastAPIOffline(title="ser: speech emotion recognition", redoc_url=None,
                         description="Emotions of recordings (POST /predict) and of live audio "
                                     "(WS /stream); the live page is at /.", version="0.1.0")
    info = model_info(predictor, hop_s, gate, settings, min_confidence)
    uploads = InferencePool(settings.workers, settings.queue)
    streams = StreamPool(settings.max_streams)
    app.state.uploads, app.state.streams, app.state.limits = uploads, streams, settings
    weakref.finalize(app, uploads.shutdown)
    weakref.finalize(app, streams.shutdown)
    app.add_middleware(UploadLimit, limit=int(settings.max_upload_mb * 2**20))
    origins = [o for o in allowed_origins if o.strip()]
    if origins:  # pages elsewhere that may call the API: CORS answers for them
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization"])
    app.add_middleware(Guard, access=Access(token, origins, allowed_hosts))  # outermost

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI's form parser wraps it as a 400
            return error(413, str(exc.__cause__))
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        fields = ", ".join(".".join(map(str, e.get("loc", ()))) for e in exc.errors())
        return error(400, f"Bad request ({fields}): POST /predict takes a recording as the "
                          "multipart form field 'file', e.g. curl -F file=@talk.wav URL/predict.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # the server goes on either way
        LOG.exception("request failed: %s %s", request.method, request.url.path)
        return error(500, f"The server failed on this request ({type(exc).__name__}); other "
                          "requests are not affected. Report it with the request that caused it.")

    @app.get("/health")
    async def health() -> dict:  # on the event loop: never behind a busy worker
        return {"status": "ok"}

    @app.get("/model")
    async def model() -> dict:
        return {**info, "busy": {"uploads": uploads.admitted, "streams": streams.open}}

    def classify(upload, name: str, threshold: float | None) -> tuple[int, bytes]:
        """On an inference worker: ``(status, JSON body)`` of one upload."""
        upload.seek(0, 2)
        if upload.tell() == 0:
            return error_body(400, f"The uploaded file {name!r} is empty: send a recording.")
        upload.seek(0)
        try:
            result = predict_upload(predictor, upload, name, hop_s, gate, settings.max_seconds,
                                    min_confidence=threshold)
            return 200, json.dumps(result, allow_nan=False).encode()
        except AudioTooLong as exc:
            return error_body(413, str(exc))
        except SerError as exc:
            return error_body(422, str(exc))
        finally:
            result = None
            give_back_memory()  # the recording's arrays are free: memory returns to where it was

    @app.post("/predict")
    async def predict(request: Request,
                      file: UploadFile = File(..., description="a recording (wav, flac, ogg, mp3)"),
                      min_confidence: str | None = Form(
                          None, description="a window or block whose top probability is below this "
                          "(above 0, below 1) is labelled unsure; also a query parameter; absent: "
                          "the server's min_confidence")):
        try:
            threshold = min_confidence_setting(
                min_confidence if min_confidence not in (None, "")
                else request.query_params.get("min_confidence"), info["min_confidence"], own)
        except SerError as exc:
            return error(422, str(exc))
        if not uploads.try_admit():
            wait = uploads.retry_after()
            return error(503, f"The server is busy: {uploads.admitted} recordings are being "
                              f"classified or waiting, its limit (workers={uploads.workers}, "
                              f"queue={uploads.capacity - uploads.workers}). Try again in {wait} s.",
                         headers={"Retry-After": str(wait)})
        status, body = await asyncio.wrap_future(uploads.submit(classify, file.file,
                                                                upload_name(file.filename), threshold))
        return Response(body, status_code=status, media_type="application/json")

    async def close(ws: WebSocket, code: int, message: str) -> None:
        try:
            await ws.send_json({"error": message})
            await ws.close(code=code, reason=message.encode("ascii", "replace")[:120].decode())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client has gone already

    @app.websocket("/stream")
    async def stream(ws: WebSocket):
        if not streams.try_enter():
            await ws.accept(subprotocol=subprotocol(ws.scope.get("subprotocols") or ()))
            await close(ws, 1013, f"This server has {streams.capacity} live streams open, its "
                                  "limit (max_streams=): try again later.")
            return
        try:
            await ws.accept(subprotocol=subprotocol(ws.scope.get("subprotocols") or ()))
            try:
                rate, fmt, hop = stream_settings(ws.query_params, int(predictor.sample_rate), hop_s)
                threshold = min_confidence_setting(ws.query_params.get("min_confidence"),
                                                   info["min_confidence"], own)
                session = StreamSession(predictor, rate, fmt, None, hop, gate, settings.stream_buffer_s,
                                        threshold)
            except SerError as exc:
                await close(ws, 1008, str(exc))
                return
            await listen(ws, session)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went: nothing to answer
        finally:
            streams.leave()  # the session (ring, resampler) goes with the connection

    async def listen(ws: WebSocket, session: StreamSession) -> None:
        loop = asyncio.get_running_loop()
        last_audio = time.monotonic()
        while True:
            left = last_audio + settings.idle_s - time.monotonic()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(ws.receive(), left)
            except asyncio.TimeoutError:
                await close(ws, 1008, f"No audio for {settings.idle_s:g} s: the stream is closed "
                                      "(idle_s=). Open a new one when there is audio to send.")
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if not data:  # a text frame, or an empty one: no audio
                continue
            last_audio = time.monotonic()
            try:
                items = await loop.run_in_executor(streams.executor, session.feed, data)
            except StreamOverflow as exc:
                await close(ws, 1009, str(exc))
                return
            except SerError as exc:
                await close(ws, 1003, str(exc))
                return
            for item in items:
                await ws.send_json(item)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
