"""``python -m ser.export ckpt=RUN out=model.onnx [opset=18]``: a checkpoint -> ONNX.

``RUN`` is a ``.ckpt`` file or a run directory written by train.py (its best checkpoint, else
last.ckpt). Arguments are ``key=value`` like the other entry points; user errors print one
paragraph and exit 2.
"""

from __future__ import annotations

import sys

from ser.cli import report_errors
from ser.errors import SerError
from ser.export import DEFAULT_OPSET, export_onnx

USAGE = "python -m ser.export ckpt=RUN_DIR_OR_CKPT out=model.onnx [opset=18]"


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` strings -> dict; unknown keys or a missing ckpt= are a SerError."""
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in ("ckpt", "out", "opset"):
            raise SerError(f"Unexpected argument {item!r}. Usage: {USAGE}")
        args[key] = value
    if not args.get("ckpt"):
        raise SerError(f"Name the checkpoint or run directory to export. Usage: {USAGE}")
    return args


@report_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        opset = int(args.get("opset", DEFAULT_OPSET))
    except ValueError:
        raise SerError(f"opset must be an integer, got {args['opset']!r}. Usage: {USAGE}") from None
    out = args.get("out") or "model.onnx"
    meta = export_onnx(args["ckpt"], out, opset)
    print(f"wrote {out}: {meta['model']} + {meta['features']}, classes {meta['classes']}, "
          f"{meta['block_seconds']} s blocks at {meta['sample_rate']} Hz")


if __name__ == "__main__":
    main()
