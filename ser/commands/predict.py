"""``ser-predict`` / ``python -m ser.predict ckpt=model.onnx|RUN audio=FILE|FOLDER
[output=table|json] [hop=0.25] [window=] [smooth=0] [out_dir=] [vad=auto] [min_speech=0.5]
[min_confidence=]``

Emotions of recordings, as ``evaluate.py ckpt=... audio=...`` gives them (a table per
recording: each block's probabilities and the whole recording's emotion; or ``output=json``,
one JSON document on stdout), plus each recording's timeline: every ``hop`` seconds the last
``window`` seconds' probabilities, inline in the JSON and as its clear stretches in the table.
``out_dir=`` also writes ``<name>.timeline.csv``/``.png`` and ``predictions.md``/``.json``
there, as evaluate.py does. ``vad=auto|silero|webrtc|energy|none`` and ``min_speech=0.5`` set
the speech gate (:mod:`ser.inference.speech_gate`): blocks and windows with less speech are
``no speech``, and the whole recording's emotion averages its speech blocks only.
``min_confidence=0.6`` lets the model abstain: a block or window (or the whole recording)
whose top probability is below it is ``unsure``, its probabilities kept, and each recording
says which share of its blocks was unsure.

It starts quickly because it imports neither pytorch_lightning nor Hydra (docs/speed.md has
the figures): an ONNX model needs onnxruntime only, a checkpoint torch and the network's own
modules (no timm, torchvision, librosa or scipy). Each recording is decoded once. Exit status
0; 2 with a one-paragraph error for bad arguments, a missing model or an undecodable
recording. A folder is classified whatever some of its files hold: every good recording is
printed, each bad one gets one line on stderr (``path: what is wrong``), and the exit status
is 2 when any failed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import replace
from pathlib import Path

from ser.cli import REQUIRED, Key, Spec, choice, number, optional, parse, report_errors
from ser.commands.keys import HOP, MIN_CONFIDENCE, MIN_SPEECH, MODEL, VAD, WINDOW
from ser.errors import SerError

COMMAND = "ser.predict"
# Bounded so that no argument asks for unbounded work: at most 100 windows per second of audio,
# windows of at most a minute (a longer one is zero-padded in memory), a smoothing of at most
# an hour of 0.25-s windows.
SPEC = Spec("classify recordings from a run or an ONNX file, quickly (no Lightning, no Hydra)", (
    MODEL,
    Key("audio", REQUIRED, "the recordings: an audio file or a folder of them"),
    Key("output", "table", "Markdown tables, or one JSON document on stdout", choice("table", "json")),
    replace(HOP, parse=number(float, 0.01, 60, unit="seconds")),
    replace(WINDOW, parse=optional(number(float, 0.01, 60, unit="seconds"))),
    Key("smooth", 0, "windows the timeline's moving average spans (0: none)", number(int, 0, 14400)),
    Key("out_dir", None, "also write the timelines and predictions.md/.json there", optional(str)),
    VAD,
    MIN_SPEECH,
    MIN_CONFIDENCE,
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
    from ser.inference.recordings import audio_paths, predict_recordings, write_predictions
    from ser.inference.speech_gate import inference_gate
    from ser.inference.windows import model_threshold, resolve_min_confidence

    args = parse(argv, SPEC, COMMAND)
    as_json = args["output"] == "json"
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    where = Path(args["out_dir"]).expanduser() if args["out_dir"] else None
    with quiet:  # JSON mode keeps stdout for the JSON document
        audio_paths(args["audio"])  # a missing file is reported before the model loads
        predictor = load_predictor(args["ckpt"])
        gate = inference_gate(args["vad"], args["min_speech"], predictor.sample_rate)
        result = predict_recordings(predictor, args["audio"], args["window"], args["hop"],
                                    args["smooth"], gate, where,
                                    resolve_min_confidence(args["min_confidence"], model_threshold(predictor)))
        text = describe(result)
        if where is not None and result["recordings"]:
            written = write_predictions(result, where)
            text += f"\n\nWrote {', '.join(p.name for p in written)} and the timelines to {where}"
    print(json.dumps(result, indent=2) if as_json else text, flush=True)
    report_failures(result)
    return result


def report_failures(result: dict) -> None:
    """Nothing when every recording gave a prediction. A single recording that gave none is the
    command's one-paragraph error; in a folder, each bad file gets one line on stderr and a
    closing paragraph says how many failed (exit status 2, after the good ones were printed)."""
    errors = result["errors"]
    if not errors:
        return
    if len(errors) == 1 and not result["recordings"]:
        raise SerError(errors[0]["error"])
    for err in errors:
        print(f"{err['path']}: " + " ".join(err["error"].split()), file=sys.stderr, flush=True)
    total = len(errors) + len(result["recordings"])
    raise SerError(f"{len(errors)} of {total} recordings gave no prediction (one line each above); "
                   f"the other {len(result['recordings'])} are printed.")


@report_errors
def main(argv: list[str] | None = None) -> None:
    predict(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
