"""The keys more than one command takes, declared once: the model, the live-window and
speech-gate settings and the abstention threshold of ``ser.predict``, ``ser.listen`` and
``ser.serve``."""

from __future__ import annotations

from ser.cli import REQUIRED, Key, choice, expects, number, optional
from ser.inference.speech_gate import CHOICES, DEFAULT_DETECTOR, DEFAULT_MIN_SPEECH
from ser.inference.windows import MODEL_THRESHOLD, UNSURE


@expects("a probability above 0 and below 1 (e.g. 0.6)")
def probability(text: str) -> float:
    """A finite number strictly between 0 and 1 (nan, inf, 0, 1 and text are refused)."""
    value = float(text)
    if not 0.0 < value < 1.0:  # nan fails both comparisons
        raise ValueError(text)
    return value


MODEL = Key("ckpt", REQUIRED, "the model: a run directory written by train.py, a .ckpt or an "
            "exported .onnx file")
HOP = Key("hop", 0.25, "seconds between windows", number(float, above=0, unit="seconds"))
WINDOW = Key("window", None, "seconds each window covers (empty: the model's block)",
             optional(number(float, above=0, unit="seconds")))
VAD = Key("vad", "auto", f"the speech gate's detector (auto: {DEFAULT_DETECTOR} when installed, "
          "else none)", choice(*CHOICES))
MIN_SPEECH = Key("min_speech", DEFAULT_MIN_SPEECH, "share of a window that must be speech to get "
                 "an emotion (0: every window)", number(float, 0, 1))


@expects(f"{MODEL_THRESHOLD}, none, or a probability above 0 and below 1 (e.g. 0.6)")
def threshold(text: str) -> float | str | None:
    """``model`` (the model's own threshold, resolved once it is loaded), None, or a probability."""
    return MODEL_THRESHOLD if text.strip().lower() == MODEL_THRESHOLD else optional(probability)(text)


MIN_CONFIDENCE = Key("min_confidence", MODEL_THRESHOLD, f"a window whose top probability is below "
                     f"this is labelled {UNSURE} ({MODEL_THRESHOLD}: the threshold the run chose on "
                     "its validation part; none: never)", threshold)
