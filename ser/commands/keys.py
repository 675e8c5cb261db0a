"""The keys more than one command takes, declared once: the model, the live-window and
speech-gate settings and the abstention threshold of ``ser.predict``, ``ser.listen`` and
``ser.serve``."""

from __future__ import annotations

from ser.cli import REQUIRED, Key, choice, expects, number, optional
from ser.inference.speech_gate import CHOICES, DEFAULT_DETECTOR, DEFAULT_MIN_SPEECH
from ser.inference.windows import UNSURE


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
MIN_CONFIDENCE = Key("min_confidence", None, f"a window whose top probability is below this is "
                     f"labelled {UNSURE} (empty: no threshold)", optional(probability))
