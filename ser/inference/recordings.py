"""Recordings -> blocks, whole-recording emotion and per-window timeline, as one JSON document.

What ``python -m ser.predict``, ``POST /predict`` of ``ser.serve`` and ``evaluate.py ckpt=
audio=`` share: ``predict_audio``'s blocks and recording probabilities, plus each recording's
timeline inline (``timeline``: window centres in s, leading class and probability per class
every hop, RMS level in dBFS, clear stretches), so no file has to be written to see it.
"""

from __future__ import annotations

from pathlib import Path

from ser.audio.io import load_audio
from ser.errors import SerError
from ser.evaluation.predict_audio import audio_paths, predict_audio
from ser.inference.timeline import timeline, timeline_summary
from ser.inference.windows import DEFAULT_HOP_S


def predict_recordings(predictor, target: str | Path, window_s: float | None = None,
                       hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None) -> dict:
    """``predict_audio`` of a file or folder with ``timeline`` added to every recording.

    ``window_s`` (s, None: the model's block length), ``hop_s`` (s) and ``smooth`` (windows)
    set the timeline as in ``evaluate.py``; ``gate`` (a
    :class:`~ser.inference.speech_gate.SpeechGate` or None) marks blocks and windows with too
    little speech ``no speech``. Undecodable files are in ``errors``, as there.
    """
    result = predict_audio(predictor, None, target, gate)
    rate = int(predictor.sample_rate)
    by_path = {rec["path"]: rec for rec in result["recordings"]}
    for path in audio_paths(target):
        rec = by_path.get(str(path))
        if rec is None:
            continue
        try:
            audio = load_audio(path, rate)
        except SerError:
            continue
        rec["timeline"] = timeline_summary(timeline(predictor, audio, window_s, hop_s, smooth, gate))
    return result
