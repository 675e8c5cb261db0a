"""``ser-export`` / ``python -m ser.export ckpt=RUN out=model.onnx [opset=18]``: a checkpoint ->
ONNX (:func:`ser.export.export_onnx`).

``RUN`` is a ``.ckpt`` file or a run directory written by train.py (its best checkpoint, else
last.ckpt). User errors print one paragraph and exit 2.
"""

from __future__ import annotations

import sys

from ser.cli import REQUIRED, Key, Spec, number, parse, report_errors
from ser.export import DEFAULT_OPSET, export_onnx

COMMAND = "ser.export"
SPEC = Spec("a checkpoint to ONNX, the front-end inside (runs with onnxruntime alone)", (
    Key("ckpt", REQUIRED, "the model: a run directory written by train.py or a .ckpt file"),
    Key("out", "model.onnx", "the ONNX file to write"),
    Key("opset", DEFAULT_OPSET, "ONNX opset (17-20)", number(int, least=1)),
))


@report_errors
def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv, SPEC, COMMAND)
    meta = export_onnx(args["ckpt"], args["out"], args["opset"])
    print(f"wrote {args['out']}: {meta['model']} + {meta['features']}, classes {meta['classes']}, "
          f"{meta['block_seconds']} s blocks at {meta['sample_rate']} Hz")


if __name__ == "__main__":
    main()
