"""``ser-predict`` / ``python -m ser.predict ckpt=model.onnx|RUN audio=FILE|FOLDER
[output=table|json] [hop=0.25] [window=] [smooth=0] [out_dir=] [vad=auto] [min_speech=0.5]``

Emotions of recordings, as ``evaluate.py ckpt=... audio=...`` gives them (a table per
recording: each block's probabilities and the whole recording's emotion; or ``output=json``,
one JSON document on stdout), plus each recording's timeline: every ``hop`` seconds the last
``window`` seconds' probabilities, inline in the JSON and as its clear stretches in the table.
``out_dir=`` also writes ``<name>.timeline.csv``/``.png`` and ``predictions.md``/``.json``
there, as evaluate.py does. ``vad=auto|silero|webrtc|energy|none`` and ``min_speech=0.5`` set
the speech gate (:mod:`ser.inference.speech_gate`): blocks and windows with less speech are
``no speech``, and the whole recording's emotion averages its speech blocks only.

It starts quickly because it imports neither pytorch_lightning nor Hydra (docs/speed.md has
the figures): an ONNX model needs onnxruntime only, a checkpoint torch and the network's own
modules (no timm, torchvision, librosa or scipy). Exit status 0;
2 with a one-paragraph error for bad arguments, a missing model or undecodable recordings.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from ser.cli import REQUIRED, Key, Spec, choice, number, optional, parse, report_errors
from ser.commands.keys import HOP, MIN_SPEECH, MODEL, VAD, WINDOW

COMMAND = "ser.predict"
SPEC = Spec("classify recordings from a run or an ONNX file, quickly (no Lightning, no Hydra)", (
    MODEL,
    Key("audio", REQUIRED, "the recordings: an audio file or a folder of them"),
    Key("output", "table", "Markdown tables, or one JSON document on stdout", choice("table", "json")),
    HOP,
    WINDOW,
    Key("smooth", 0, "windows the timeline's moving average spans (0: none)", number(int, least=0)),
    Key("out_dir", None, "also write the timelines and predictions.md/.json there", optional(str)),
    VAD,
    MIN_SPEECH,
))


def describe(result: dict) -> str:
    """The Markdown tables of ``predictions_markdown`` with each recording's clear stretches."""
    from ser.inference.recordings import predictions_markdown
    from ser.inference.timeline import stretches_line

    text = predictions_markdown(result)
    lines = [f"- {Path(rec['path']).name} ({rec['timeline']['window_s']:g}-s windows every "
             f"{rec['timeline']['hop_s']:g} s): {stretches_line(rec['timeline'])}"
             for rec in result["recordings"] if "timeline" in rec]
    return text + ("\n\nTimelines:\n" + "\n".join(lines) if lines else "")


def predict(argv: list[str]) -> dict:
    """What ``python -m ser.predict`` does: print the tables (or JSON); return the result."""
    from ser.inference.predictor import load_predictor
    from ser.inference.recordings import (audio_paths, predict_recordings, raise_for_errors,
                                          write_predictions)
    from ser.inference.speech_gate import inference_gate

    args = parse(argv, SPEC, COMMAND)
    as_json = args["output"] == "json"
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:  # JSON mode keeps stdout for the JSON document
        audio_paths(args["audio"])  # a missing file is reported before the model loads
        predictor = load_predictor(args["ckpt"])
        gate = inference_gate(args["vad"], args["min_speech"], predictor.sample_rate)
        result = predict_recordings(predictor, args["audio"], args["window"], args["hop"],
                                    args["smooth"], gate)
        text = describe(result)
        if args["out_dir"]:
            from ser.inference.timeline import write_timelines

            where = Path(args["out_dir"]).expanduser()
            result["timelines"] = write_timelines(predictor, audio_paths(args["audio"]), where,
                                                  args["window"], args["hop"], args["smooth"], gate)
            if result["recordings"]:
                written = write_predictions(result, where)
                text += f"\n\nWrote {', '.join(p.name for p in written)} and the timelines to {where}"
    print(json.dumps(result, indent=2) if as_json else text, flush=True)
    raise_for_errors(result)
    return result


@report_errors
def main(argv: list[str] | None = None) -> None:
    predict(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
