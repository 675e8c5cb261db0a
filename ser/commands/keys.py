"""The keys more than one command takes, declared once: the model and the live-window and
speech-gate settings of ``ser.predict``, ``ser.listen`` and ``ser.serve``."""

from __future__ import annotations

from ser.cli import REQUIRED, Key, choice, number, optional
from ser.inference.speech_gate import CHOICES, DEFAULT_DETECTOR, DEFAULT_MIN_SPEECH

MODEL = Key("ckpt", REQUIRED, "the model: a run directory written by train.py, a .ckpt or an "
            "exported .onnx file")
HOP = Key("hop", 0.25, "seconds between windows", number(float, above=0, unit="seconds"))
WINDOW = Key("window", None, "seconds each window covers (empty: the model's block)",
             optional(number(float, above=0, unit="seconds")))
VAD = Key("vad", "auto", f"the speech gate's detector (auto: {DEFAULT_DETECTOR} when installed, "
          "else none)", choice(*CHOICES))
MIN_SPEECH = Key("min_speech", DEFAULT_MIN_SPEECH, "share of a window that must be speech to get "
                 "an emotion (0: every window)", number(float, 0, 1))
