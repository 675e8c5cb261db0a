"""``python -m ser.commands.bench_speech family=wavlm mode=head``: one measurement of part (g)
of ``ser-bench`` (:func:`ser.bench.speech.measure`) in its own process, so that its peak memory
is its own; prints one JSON line. :func:`ser.bench.speech.speech_encoder_figures` starts it."""

from __future__ import annotations

import json
import sys

from ser.bench.speech import MODES, measure
from ser.cli import REQUIRED, Key, Spec, choice, number, parse, report_errors, switch

COMMAND = "ser.commands.bench_speech"
SPEC = Spec("one speech encoder's training cost (part (g) of ser-bench) as one JSON line", (
    Key("family", REQUIRED, "the speech encoder family, e.g. wavlm, hubert or wav2vec2"),
    Key("mode", REQUIRED, "what trains: " + ", ".join(f"{m} ({what})" for m, what in MODES.items()),
        choice(*MODES)),
    Key("batch_size", 8, "1-s blocks per training step", number(int, least=1)),
    Key("steps", 3, "timed training steps (after three warm-up steps)", number(int, least=1)),
    Key("device", "cpu", "where it trains", choice("cpu", "cuda")),
    Key("tiny", False, "a toy-size model (for ser-bench quick=true)", switch),
))


@report_errors
def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv, SPEC, COMMAND)
    print(json.dumps(measure(args["family"], args["mode"], args["batch_size"], args["steps"],
                             args["tiny"], args["device"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
