"""``ser-serve`` / ``python -m ser.serve ckpt=RUN|model.onnx [host=127.0.0.1] [port=8000] [token=]
[max_upload_mb=20] [hop=0.25] [vad=auto] [min_speech=0.5]``

Loads the model once and serves it with uvicorn: ``POST /predict``, ``WS /stream``,
``GET /health``, ``GET /model``, the live page at ``/`` and the OpenAPI page at ``/docs``
(:mod:`ser.serve.app`). It listens on 127.0.0.1 (this machine only) unless ``host=`` says
otherwise, and warns when that is every interface; ``token=`` makes every API request need
``Authorization: Bearer <token>``. ``vad=``/``min_speech=`` set the speech gate
(:mod:`ser.inference.speech_gate`): windows without enough speech are ``no speech``. Bad
arguments give a one-paragraph error and exit 2.
"""

from __future__ import annotations

import sys

from ser.cli import Key, Spec, number, parse, report_errors
from ser.commands.keys import HOP, MIN_SPEECH, MODEL, VAD
from ser.errors import SerError

COMMAND = "ser.serve"
PIP_HINT = "pip install 'ser[serve]' (FastAPI, uvicorn and python-multipart)"
SPEC = Spec("the live page and the HTTP/WebSocket API of a trained model", (
    MODEL,
    Key("host", "127.0.0.1", "address to listen on (0.0.0.0: every interface, with a warning)"),
    Key("port", 8000, "TCP port", number(int, 0, 65535)),
    Key("token", None, "if set, every API request needs Authorization: Bearer <token>"),
    Key("max_upload_mb", 20.0, "largest upload to /predict", number(float, above=0, unit="MiB")),
    HOP,
    VAD,
    MIN_SPEECH,
))


def exposure_warning(host: str, token: str | None) -> str | None:
    """A warning when the server is reachable from other machines (and more so without a token)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    everyone = host in ("0.0.0.0", "::", "")
    where = "every network interface" if everyone else host
    return (f"warning: listening on {where}: other machines can reach this server"
            + ("" if token else " and, without token=, use it freely") + ". Uploads and streams "
            "travel unencrypted; put it behind an HTTPS proxy for anything but a trusted network.")


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

    predictor = load_predictor(args["ckpt"])
    gate = inference_gate(args["vad"], args["min_speech"], predictor.sample_rate)
    warm_up(predictor)
    app = create_app(predictor, token=args["token"], max_upload_mb=args["max_upload_mb"],
                     hop_s=args["hop"], gate=gate)
    warning = exposure_warning(args["host"], args["token"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    shown = f"[{args['host']}]" if ":" in args["host"] else args["host"]
    print(f"serving {args['ckpt']} ({', '.join(predictor.classes)}) at http://{shown}:{args['port']}/ "
          f"(live page), /docs (API); Ctrl-C stops", file=sys.stderr, flush=True)
    # a WebSocket client must answer the server's ping within ws_ping_timeout: on a busy CPU the
    # 20-s default closed live streams whose answers were merely late
    uvicorn.run(app, host=args["host"], port=args["port"], log_level="warning",
                ws_ping_interval=20.0, ws_ping_timeout=120.0)


@report_errors
def main(argv: list[str] | None = None) -> None:
    serve(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
