"""The speech gate of inference: windows with too little speech are ``no speech``, not an emotion.

A network trained on speech gives every 1-s window an emotion, a quiet room's included. The
gate runs a speech-activity detector (:mod:`ser.audio.speech_detectors`) beside the network:
a window (timeline, live hop) or block (a recording's table) whose share of speech is below
``min_speech`` is labelled :data:`NO_SPEECH`, and a recording's overall emotion averages its
speech blocks only. ``ser.predict``, ``ser.listen``, ``ser.serve`` and ``evaluate.py audio=``
take ``vad=auto|silero|webrtc|energy|none`` and ``min_speech=``; ``auto`` (the default) is
:data:`DEFAULT_DETECTOR` when its package is installed and no gate otherwise, said once on
stderr, so a plain install classifies as before.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.audio.speech_activity import ActivityStream, speech_mask, window_fractions
from ser.errors import SerError

NO_SPEECH = "no speech"          # the label of a window or recording without enough speech
DEFAULT_DETECTOR = "silero"      # vad=auto: the detector chosen by measurement (docs/speed.md)
DEFAULT_MIN_SPEECH = 0.5         # share of a window that must be speech to be given an emotion
CHOICES = ("auto", "silero", "webrtc", "energy", "none")


def detector_from_name(name: str, sample_rate: int):
    """The detector conf/vad/<name>.yaml builds at ``sample_rate`` Hz (None for ``none``).

    Read with PyYAML and built by :func:`ser.configs.build`, not through Hydra: the light
    commands (ser.predict, ser.listen, ser.serve) start without importing Hydra."""
    import yaml

    from ser.configs import build, conf_dir

    path = conf_dir() / "vad" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SerError(f"vad={name}: no such detector; choose one of {', '.join(options)} "
                       f"(the files in {path.parent}), or vad=auto.")
    return build(dict(yaml.safe_load(path.read_text()) or {}), sample_rate=int(sample_rate))


@dataclass
class SpeechGate:
    """A detector and the share of speech (0-1) a window needs to be given an emotion."""

    detector: Any
    min_speech: float

    def mask(self, audio: np.ndarray) -> np.ndarray:
        """(T,) waveform -> (T,) bool speech samples (one pass over the whole recording)."""
        return speech_mask(self.detector, audio)

    def fractions(self, audio: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
        """(n,) share of speech in each window of ``window`` samples starting at ``starts``."""
        return window_fractions(self.mask(audio), starts, window)

    def stream(self, window: int) -> ActivityStream:
        """A live stream's detector for windows of ``window`` samples."""
        return ActivityStream(self.detector, window)

    def speaks(self, fraction: float | np.ndarray):
        return np.asarray(fraction) >= self.min_speech

    def describe(self) -> str:
        return f"vad={self.detector.name}, min_speech={self.min_speech:g}"


def parse_min_speech(value: Any) -> float:
    """``min_speech=`` as a share in [0, 1] (None: :data:`DEFAULT_MIN_SPEECH`)."""
    try:
        share = DEFAULT_MIN_SPEECH if value in (None, "") else float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise SerError(f"min_speech={value}: give the share of a window that must be speech, "
                       f"between 0 and 1 (default {DEFAULT_MIN_SPEECH:g}; 0 gives every window an emotion).")
    return share


def inference_gate(vad: str | None, min_speech: Any, sample_rate: int,
                   quiet: bool = False) -> SpeechGate | None:
    """The gate ``vad=`` asks for, or None. ``auto``: :data:`DEFAULT_DETECTOR` when its package
    is installed, else no gate (with one line on stderr unless ``quiet``); ``none`` or None (the
    light commands read ``vad=none`` as None): no gate. A named detector that cannot load is a
    SerError naming the extra to install."""
    choice = "none" if vad is None else str(vad).lower()
    share = parse_min_speech(min_speech)
    if choice not in CHOICES:
        raise SerError(f"vad={vad}: choose one of {', '.join(CHOICES)} (auto: {DEFAULT_DETECTOR} "
                       "when installed, else no speech gate).")
    if choice == "none":
        return None
    try:
        detector = detector_from_name(DEFAULT_DETECTOR if choice == "auto" else choice, sample_rate)
    except SerError as exc:
        if choice != "auto":
            raise
        if not quiet:
            print(f"note: no speech gate, so silence and noise get an emotion too ({exc}".split(". Install")[0]
                  + "); pip install 'ser[vad]' adds it, vad=energy finds silence without it.",
                  file=sys.stderr, flush=True)
        return None
    return SpeechGate(detector, share)
