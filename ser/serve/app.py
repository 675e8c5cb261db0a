"""The ASGI application of ``python -m ser.serve``: one loaded model behind HTTP and WebSocket.

Routes (JSON everywhere, errors as ``{"error": "<one paragraph>", "status": <code>}``):

- ``POST /predict``: a recording as the multipart field ``file`` (any format ser decodes) ->
  the JSON of ``python -m ser.predict output=json`` (blocks, whole-recording emotion, timeline);
- ``WS /stream?rate=16000&format=s16le|f32le[&hop=0.25]``: binary frames of mono PCM -> one
  JSON message per hop, as ``ser.listen`` prints; every connection has its own ring buffer;
- ``GET /health``, ``GET /model`` (classes, rate, window, hop, the file and run it came from);
- ``GET /`` the live page (``ser/serve/static``), ``/docs`` the OpenAPI page.

With a ``token``, every API request must carry ``Authorization: Bearer <token>`` (a browser's
WebSocket cannot set headers, so ``/stream`` also takes ``?token=``); the page's static files
and the API description hold no data and stay open so a browser can load them.
An upload is written to a temporary file the server names; no client-supplied path is opened.
"""

from __future__ import annotations

import hmac
import re
import tempfile
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, File, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from ser.audio.io import AUDIO_SUFFIXES
from ser.errors import SerError
from ser.inference.recordings import predict_recordings
from ser.serve.limits import BodyTooLarge, UploadLimit
from ser.serve.streaming import StreamSession

OPEN_PATHS = ("/", "/docs", "/openapi.json", "/favicon.ico")  # no data: a browser loads them bare
STATIC = resources.files("ser.serve") / "static"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def model_info(predictor, hop_s: float, gate=None) -> dict:
    """What ``GET /model`` says: classes, rates and lengths (Hz, s), and where the model came from
    (file and run folder names only: the server's own paths stay private)."""
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
            "speech_gate": None if gate is None else gate.describe()}


def authorised(headers, query_token: str | None, token: str | None) -> bool:
    """True without a token; else the bearer header (or ``?token=`` for WebSockets) must match."""
    if not token:
        return True
    given = headers.get("authorization", "")
    given = given[7:] if given.lower().startswith("bearer ") else (query_token or "")
    return hmac.compare_digest(given.encode(), token.encode())


def upload_suffix(filename: str | None) -> str:
    """The temporary file's suffix: the upload's own if it is an audio suffix ser knows (some
    decoders go by it), else none. Only the suffix of the client's name is ever used."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES and re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def create_app(predictor, token: str | None = None, max_upload_mb: float = 20.0,
               hop_s: float = 0.25, gate=None) -> FastAPI:
    """The application around one loaded ``predictor`` (see :mod:`ser.inference.predictor`);
    ``gate`` (a :class:`~ser.inference.speech_gate.SpeechGate` or None) marks windows and
    blocks without enough speech ``no speech`` in /predict and /stream."""
    app = FastAPI(title="ser: speech emotion recognition",
                  description="Emotions of recordings (POST /predict) and of live audio (WS /stream); "
                              "the live page is at /.", version="0.1.0")
    info = model_info(predictor, hop_s, gate)
    app.add_middleware(UploadLimit, limit=int(max_upload_mb * 2**20))  # inside the token check

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        path = request.url.path
        if path in OPEN_PATHS or path.startswith("/static/") or authorised(request.headers, None, token):
            return await call_next(request)
        return error(401, "This server needs a bearer token: send the header "
                          "'Authorization: Bearer <token>' (the token the server was started with).")

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
        return error(500, f"The server failed on this request ({type(exc).__name__}: {exc}); "
                          "other requests are not affected. Report it with the request that caused it.")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/model")
    def model() -> dict:
        return info

    @app.post("/predict")
    async def predict(file: UploadFile = File(..., description="a recording (wav, flac, ogg, mp3)")):
        name = Path(file.filename or "upload").name
        with tempfile.TemporaryDirectory(prefix="ser-serve-") as tmp:
            target = Path(tmp) / f"upload{upload_suffix(file.filename)}"
            with open(target, "wb") as out:
                while chunk := await file.read(1 << 20):
                    out.write(chunk)
            if target.stat().st_size == 0:
                return error(400, f"The uploaded file {name!r} is empty: send a recording.")
            try:
                result = await run_in_threadpool(predict_recordings, predictor, target, None, hop_s,
                                                 0, gate)
            except SerError as exc:
                return error(422, str(exc).replace(str(target), name))
        for rec in result["recordings"]:
            rec["path"] = name
        if result["errors"]:  # one upload: its only error is the answer
            return error(422, result["errors"][0]["error"].replace(str(target), name)
                         .replace(" or remove it from the corpus", ""))
        return result

    @app.websocket("/stream")
    async def stream(ws: WebSocket, rate: int | None = None, format: str = "s16le",
                     hop: float | None = None):
        if not authorised(ws.headers, ws.query_params.get("token"), token):
            await ws.close(code=1008, reason="bearer token required")
            return
        await ws.accept()
        try:
            session = StreamSession(predictor, rate, format, None, hop or hop_s, gate)
        except SerError as exc:
            await ws.send_json({"error": str(exc)})
            await ws.close(code=1003)
            return
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:  # a text frame: nothing to classify
                    continue
                for item in await run_in_threadpool(session.feed, data):
                    await ws.send_json(item)
        except SerError as exc:
            await ws.send_json({"error": str(exc)})
            await ws.close(code=1003)
        except WebSocketDisconnect:
            pass
        finally:
            del session  # the ring and resampler go with the connection

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
