"""``ser-serve`` / ``python -m ser.serve ckpt=RUN|model.onnx [host=127.0.0.1] [port=8000] [token=]
[allowed_origins=] [allowed_hosts=] [max_upload_mb=20] [max_seconds=600] [workers=] [queue=]
[max_streams=] [idle_s=30] [stream_buffer_s=10] [hop=0.25] [vad=auto] [min_speech=0.5]
[min_confidence=]``

Loads the model once and serves it with uvicorn: ``POST /predict``, ``WS /stream``,
``GET /health``, ``GET /model``, the live page at ``/`` and the OpenAPI page at ``/docs``
(:mod:`ser.serve.app`). It listens on 127.0.0.1 (this machine only) unless ``host=`` says
otherwise, and warns when that is reachable from other machines; ``token=`` makes every API
request need ``Authorization: Bearer <token>``; browsers' requests from other sites are
refused unless ``allowed_origins=`` names them (:mod:`ser.serve.access`). The limits on what
one client may ask for are keys too (:class:`ser.serve.limits.Limits`). ``vad=``/``min_speech=``
set the speech gate (:mod:`ser.inference.speech_gate`): windows without enough speech are
``no speech``. ``min_confidence=`` (0-1) is the abstention threshold a request gets unless it
sets its own (``min_confidence`` on ``/predict`` and ``/stream``): windows whose top
probability is below it are ``unsure``. Bad arguments, an address in use or one this machine
does not have give a one-paragraph error and exit 2, before the model loads.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from dataclasses import replace

from ser.cli import Key, Spec, expects, number, optional, parse, report_errors
from ser.commands.keys import HOP, MIN_CONFIDENCE, MIN_SPEECH, MODEL, VAD
from ser.errors import SerError

COMMAND = "ser.serve"
PIP_HINT = "pip install 'ser[serve]' (FastAPI, fastapi-offline, uvicorn and python-multipart)"


@expects("names separated by commas, or * for any")
def names(text: str) -> tuple[str, ...]:
    found = tuple(t.strip() for t in text.split(",") if t.strip())
    if any(any(c.isspace() for c in t) for t in found):
        raise ValueError(text)
    return found


SPEC = Spec("the live page and the HTTP/WebSocket API of a trained model", (
    MODEL,
    Key("host", "127.0.0.1", "address to listen on (0.0.0.0: every interface, with a warning)"),
    Key("port", 8000, "TCP port (0: a free one, printed)", number(int, 0, 65535)),
    Key("token", None, "if set, every API request needs Authorization: Bearer <token>"),
    Key("allowed_origins", (), "other web pages that may use the API from a browser, e.g. "
        "http://localhost:3000 (the server's own page always may)", names),
    Key("allowed_hosts", (), "names the server answers to besides addresses, localhost and "
        "this machine's name (a proxy's public name)", names),
    Key("max_upload_mb", 20.0, "largest upload to /predict", number(float, 0.01, 2048, unit="MiB")),
    Key("max_seconds", 600.0, "longest recording /predict classifies",
        number(float, 1, 86400, unit="seconds")),
    Key("workers", None, "uploads classified at once (empty: half the cores)",
        optional(number(int, 1, 256))),
    Key("queue", None, "uploads that may wait beyond them; more get 503 (empty: 8 per worker)",
        optional(number(int, 0, 10000))),
    Key("max_streams", None, "live streams at once; more are closed with 1013 (empty: 16 per "
        "core)", optional(number(int, 1, 100000))),
    Key("idle_s", 30.0, "a stream without audio for this long is closed",
        number(float, 1, 86400, unit="seconds")),
    Key("stream_buffer_s", 10.0, "most audio one stream frame may hold",
        number(float, 1, 60, unit="seconds")),
    replace(HOP, parse=number(float, 0.05, 5, unit="seconds")),
    VAD,
    MIN_SPEECH,
    MIN_CONFIDENCE,
))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also as [::1] or IPv4-mapped) and localhost: this machine only."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def exposure_warning(host: str, token: str | None) -> str | None:
    """A warning when the server is reachable from other machines (and more so without a token)."""
    if is_loopback(host):
        return None
    everyone = host.strip("[]") in ("0.0.0.0", "::", "")
    where = "every network interface" if everyone else host
    return (f"warning: listening on {where}: other machines can reach this server"
            + ("" if token else " and, without token=, use it freely") + ". Uploads and streams "
            "travel unencrypted; put it behind an HTTPS proxy for anything but a trusted network.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or a SerError of one paragraph saying why not
    (checked here, before anything is printed, rather than by uvicorn after its start)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SerError(f"host={host}: not an address this machine can listen on "
                       f"({getattr(exc, 'strerror', None) or exc}). Give an address of one of its "
                       "interfaces: 127.0.0.1 (this machine only, the default), 0.0.0.0 (every "
                       "interface) or ::1.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reasons = {
            errno.EADDRINUSE: f"port {port} is in use on {host} (another server, or a ser-serve "
                              "still running): choose another port= (port=0 picks a free one) or "
                              "stop the program holding it.",
            errno.EADDRNOTAVAIL: f"host={host} is not an address of this machine: give one of its "
                                 "interfaces (127.0.0.1, the default; 0.0.0.0 for every interface).",
            errno.EACCES: f"port {port} needs administrator rights on this machine (ports below "
                          "1024 usually do): choose port=8000 or another above 1023.",
        }
        raise SerError(f"Cannot listen on {host}:{port}: " + reasons.get(
            exc.errno, f"{exc.strerror or exc}. Choose another host= or port=.")) from None
    return sock


def serve(argv: list[str]) -> None:
    args = parse(argv, SPEC, COMMAND)
    try:
        import uvicorn

        from ser.serve.app import create_app
    except ImportError as exc:
        raise SerError(f"ser.serve needs {exc.name or 'its web packages'}, which is not installed "
                       f"here. Install them with {PIP_HINT}.") from exc
    from ser.inference.predictor import load_predictor, warm_up
    from ser.inference.speech_gate import inference_gate
    from ser.serve.limits import Limits

    sock = bind(args["host"], args["port"])
    predictor = load_predictor(args["ckpt"])
    gate = inference_gate(args["vad"], args["min_speech"], predictor.sample_rate)
    warm_up(predictor)
    limits = {k: args[k] for k in ("max_seconds", "workers", "queue", "max_streams", "idle_s",
                                   "stream_buffer_s")}
    app = create_app(predictor, token=args["token"], max_upload_mb=args["max_upload_mb"],
                     hop_s=args["hop"], gate=gate, min_confidence=args["min_confidence"],
                     allowed_origins=args["allowed_origins"],
                     allowed_hosts=args["allowed_hosts"], **limits)
    warning = exposure_warning(args["host"], args["token"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    port = sock.getsockname()[1]
    shown = f"[{args['host'].strip('[]')}]" if ":" in args["host"] else args["host"]
    print(f"serving {args['ckpt']} ({', '.join(predictor.classes)}) at http://{shown}:{port}/ "
          f"(live page), /docs (API); Ctrl-C stops", file=sys.stderr, flush=True)
    frame = Limits().max_frame_mb
    # a WebSocket client must answer the server's ping within ws_ping_timeout: on a busy CPU the
    # 20-s default closed live streams whose answers were merely late. A connection holds at most
    # ws_max_queue + 1 frames of ws_max_size bytes (uvicorn's defaults: 33 of 16 MiB).
    config = uvicorn.Config(app, host=args["host"], port=port, log_level="warning",
                            ws_ping_interval=20.0, ws_ping_timeout=120.0,
                            ws_max_size=int(frame * 2**20), ws_max_queue=2,
                            ws_per_message_deflate=False)
    uvicorn.Server(config).run(sockets=[sock])


@report_errors
def main(argv: list[str] | None = None) -> None:
    serve(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
