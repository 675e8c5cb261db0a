"""``python -m ser.export ckpt=RUN out=model.onnx [opset=18]``: a checkpoint -> ONNX.

``RUN`` is a ``.ckpt`` file or a run directory written by train.py (its best checkpoint, else
last.ckpt). Arguments are ``key=value`` like the other entry points; user errors print one
paragraph and exit 2.
"""

from __future__ import annotations

import sys

from ser.cli import key_value_words, report_errors
from ser.errors import SerError
from ser.export import DEFAULT_OPSET, export_onnx

DEFAULTS = {"ckpt": None, "out": "model.onnx", "opset": str(DEFAULT_OPSET)}
USAGE = "python -m ser.export ckpt=RUN_DIR_OR_CKPT out=model.onnx [opset=18]"


def parse_args(argv: list[str]) -> dict:
    """``key=value`` words -> settings (opset an int); SerError otherwise."""
    args = key_value_words(argv, DEFAULTS, "ser.export", f". Usage: {USAGE}")
    if not args["ckpt"]:
        raise SerError(f"ser.export needs the model: ckpt= a run directory or a .ckpt file. "
                       f"Usage: {USAGE}")
    try:
        args["opset"] = int(args["opset"] or DEFAULT_OPSET)
    except ValueError:
        raise SerError(f"opset= takes an integer (17-20), got {args['opset']!r}. Usage: {USAGE}") from None
    args["out"] = args["out"] or DEFAULTS["out"]
    return args


@report_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    meta = export_onnx(args["ckpt"], args["out"], args["opset"])
    print(f"wrote {args['out']}: {meta['model']} + {meta['features']}, classes {meta['classes']}, "
          f"{meta['block_seconds']} s blocks at {meta['sample_rate']} Hz")


if __name__ == "__main__":
    main()
