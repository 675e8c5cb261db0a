"""Recordings -> 1-s blocks -> emotion probabilities, as tables, JSON and timelines.

A recording (any rate, any channel count) is decoded to mono at the model's sample rate, cut
into its blocks (1 s by default, a trailing remainder dropped or padded as in training) and
each block classified clean, as the test sets' clean blocks are; the recording's probabilities
are the mean of its blocks'. What ``python -m ser.predict``, ``POST /predict`` of ``ser.serve``
and ``evaluate.py ckpt= audio=`` share: :func:`predict_audio`'s blocks and recording
probabilities, and with :func:`predict_recordings` each recording's timeline inline
(``timeline``: window centres in s, leading class and probability per class every hop, RMS
level in dBFS, clear stretches), so no file has to be written to see it. With
``min_confidence``, a block or window whose top probability is below it is ``unsure`` (its
probabilities kept), and so is a recording whose mean is; the recording says which share of
its blocks was unsure (and, with a speech gate, which share had no speech).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ser.atomic import write_json_atomic, write_text_atomic
from ser.audio.io import AUDIO_SUFFIXES, decode_audio, list_audio_files
from ser.audio.speech_activity import window_fractions
from ser.data.blocks import cut_blocks
from ser.errors import SerError
from ser.inference.speech_gate import NO_SPEECH
from ser.inference.timeline import (note_resampled, predict_some, resampled_from, timeline,
                                    timeline_summary, unique_names, write_timeline_files)
from ser.inference.windows import DEFAULT_HOP_S, UNSURE, unsure_rows, window_label


def predict_recording(predictor, path: Path, sample_rate: int, block_seconds: float,
                      pad_min_fraction: float | None, gate=None, audio: np.ndarray | None = None,
                      source: str | None = None, speech_mask: np.ndarray | None = None,
                      batch_size: int | None = None, min_confidence: float | None = None) -> dict:
    """Probabilities per block and for the whole recording; SerError when it gives no block.
    With a ``gate``, each block's ``speech`` share and the gate's verdict: a block with too
    little speech is ``no speech`` (probabilities None: the network does not run on it), the
    recording's mean is over its speech blocks only, and a recording with none says ``no
    speech`` instead of an emotion. ``audio`` (T,) at ``sample_rate``, its ``source``
    description and the gate's ``speech_mask``, when the caller has decoded it already;
    ``batch_size`` blocks at a time to the network (None: all at once). With ``min_confidence``
    (0-1), a block whose top probability is below it is ``unsure`` (probabilities kept), the
    recording is ``unsure`` when its mean's top probability is, and the recording gives
    ``min_confidence``, ``unsure_blocks`` and ``unsure_share`` (of all its blocks), beside
    ``no_speech_share`` with a gate."""
    if audio is None:
        audio, source = decode_audio(path, sample_rate)
    block_samples = int(round(block_seconds * sample_rate))
    blocks = cut_blocks(audio, block_samples, pad_min_fraction)
    seconds = audio.shape[0] / sample_rate
    if len(blocks) == 0:
        raise SerError(f"{path} holds {seconds:.2f} s of audio, shorter than one {block_seconds:g}-s "
                       f"block, the unit this model classifies. Use a recording of at least "
                       f"{block_seconds:g} s" + ("" if pad_min_fraction is not None else
                                                 " (or a checkpoint trained with data.pad_min_fraction, "
                                                 "which pads short remainders)") + ".")
    classes = list(predictor.classes)
    speech = None
    speaks = np.ones(len(blocks), bool)
    if gate is not None:
        mask = gate.mask(audio) if speech_mask is None else speech_mask
        starts = np.arange(len(blocks)) * block_samples
        speech = window_fractions(mask, starts, block_samples)  # a padded tail counts as silence
        speaks = np.asarray(gate.speaks(speech), bool)
    spoken = predict_some(predictor, blocks, np.flatnonzero(speaks), batch_size or len(blocks))
    probs: list[np.ndarray | None] = [None] * len(blocks)
    for i, p in zip(np.flatnonzero(speaks), spoken):
        probs[i] = p
    as_dict = lambda p: {c: float(v) for c, v in zip(classes, p)}  # noqa: E731
    rows = [{"start_s": round(i * block_seconds, 3), "end_s": round((i + 1) * block_seconds, 3),
             "probabilities": None if p is None else as_dict(p),
             "emotion": NO_SPEECH if p is None else window_label(p, classes, min_confidence),
             **({} if speech is None else {"speech": round(float(speech[i]), 4)})}
            for i, p in enumerate(probs)]
    if len(spoken):
        mean = spoken.mean(axis=0)
        whole = {"probabilities": as_dict(mean), "emotion": window_label(mean, classes, min_confidence)}
    else:  # no block with enough speech: no emotion to give
        whole = {"probabilities": None, "emotion": NO_SPEECH}
    if gate is not None:
        whole.update(speech_blocks=int(speaks.sum()), gate=gate.describe())
    if min_confidence is not None:
        unsure = int(unsure_rows(spoken, min_confidence).sum())
        whole.update(min_confidence=min_confidence, unsure_blocks=unsure,
                     unsure_share=round(unsure / len(blocks), 4))
        if gate is not None:
            whole["no_speech_share"] = round(1 - int(speaks.sum()) / len(blocks), 4)
    return {"path": str(path), "source": source, "duration_s": round(seconds, 3),
            "block_seconds": block_seconds, "blocks": rows, "recording": whole}


def audio_paths(target: str | Path) -> list[Path]:
    target = Path(target).expanduser()
    if target.is_dir():
        files = list_audio_files(target)
        if not files:
            raise SerError(f"No audio file in {target}: expected files ending in "
                           f"{', '.join(AUDIO_SUFFIXES)} (searched recursively).")
        return files
    if not target.exists():
        raise SerError(f"Audio file not found: {target}. Pass audio=FILE.wav or audio=FOLDER.")
    return [target]


def predict_audio(predictor, target: str | Path, gate=None, min_confidence: float | None = None) -> dict:
    """Predictions for every recording at ``target`` (a file or a folder) by a
    :class:`ser.inference.predictor.Predictor`, at its own block settings; ``errors`` lists the
    files that gave none. ``gate``: a :class:`~ser.inference.speech_gate.SpeechGate` or None;
    ``min_confidence``: blocks whose top probability is below it are ``unsure``."""
    sample_rate, block_seconds, pad = (predictor.sample_rate, predictor.block_seconds,
                                       predictor.pad_min_fraction)
    results, errors = [], []
    for path in audio_paths(target):
        try:
            results.append(predict_recording(predictor, path, sample_rate, block_seconds, pad, gate,
                                             min_confidence=min_confidence))
        except SerError as exc:  # undecodable, empty or too short: report, go on with the rest
            errors.append({"path": str(path), "error": str(exc)})
    return {"classes": list(predictor.classes), "sample_rate": sample_rate, "block_seconds": block_seconds,
            "recordings": results, "errors": errors}


def predictions_markdown(prediction: Mapping[str, Any]) -> str:
    """One table per recording: a row per block and a last row for the whole recording (in %)."""
    classes: Sequence[str] = prediction["classes"]
    header = "| Block | Time (s) | " + " | ".join(classes) + " | Emotion |"
    rule = "|---|---|" + "---:|" * len(classes) + "---|"
    parts = []
    for rec in prediction["recordings"]:
        n = len(rec["blocks"])
        covered = n * rec["block_seconds"]
        note = (f"; the last {rec['duration_s'] - covered:.2f} s (less than a block) is not classified"
                if rec["duration_s"] - covered > 1e-3 else "")
        lines = [f"**{rec['path']}**: {rec['duration_s']:.2f} s ({rec['source']}), {n} block(s) of "
                 f"{rec['block_seconds']:g} s{note}", "", header, rule]
        row = lambda name, span, p, emotion: (  # noqa: E731
            f"| {name} | {span} | " + " | ".join("–" if p is None else f"{100 * p[c]:.1f}" for c in classes)
            + f" | {emotion} |")
        for i, b in enumerate(rec["blocks"], 1):
            lines.append(row(str(i), f"{b['start_s']:g}–{b['end_s']:g}", b["probabilities"], b["emotion"]))
        whole = rec["recording"]
        lines.append(row("**Whole recording**", f"0–{covered:g}", whole["probabilities"],
                         f"**{whole['emotion']}**" + abstained(whole)))
        parts.append("\n".join(lines))
    for err in prediction["errors"]:
        parts.append(f"**{err['path']}**: no prediction. {err['error']}")
    return "\n\n".join(parts)


def abstained(whole: Mapping[str, Any]) -> str:
    """How much of a recording was ``unsure`` (and had no speech), as its table's last cell
    adds it: `` (25% of blocks unsure, 50% no speech)``; nothing without ``min_confidence``."""
    if "unsure_share" not in whole:
        return ""
    shares = [f"{100 * whole['unsure_share']:.0f}% of blocks {UNSURE}"]
    if "no_speech_share" in whole:
        shares.append(f"{100 * whole['no_speech_share']:.0f}% {NO_SPEECH}")
    return " (" + ", ".join(shares) + ")"


def raise_for_errors(prediction: Mapping[str, Any]) -> None:
    """A non-zero exit when any recording gave no prediction (after the others were printed)."""
    errors = prediction["errors"]
    if not errors:
        return
    if len(errors) == 1 and not prediction["recordings"]:
        raise SerError(errors[0]["error"])
    raise SerError(f"{len(errors)} of {len(errors) + len(prediction['recordings'])} recordings gave no "
                   f"prediction (the others are above): " + " ".join(e["error"] for e in errors[:3])
                   + (" ..." if len(errors) > 3 else ""))


def write_predictions(prediction: Mapping[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "predictions.md", predictions_markdown(prediction) + "\n")
    write_json_atomic(out_dir / "predictions.json", prediction)
    return [out_dir / "predictions.md", out_dir / "predictions.json"]


def predict_recordings(predictor, target: str | Path, window_s: float | None = None,
                       hop_s: float = DEFAULT_HOP_S, smooth: int = 0, gate=None,
                       out_dir: Path | None = None, min_confidence: float | None = None) -> dict:
    """``predict_audio`` of a file or folder with ``timeline`` added to every recording.

    ``window_s`` (s, None: the model's block length), ``hop_s`` (s) and ``smooth`` (windows)
    set the timeline as in ``evaluate.py``; ``gate`` (a
    :class:`~ser.inference.speech_gate.SpeechGate` or None) marks blocks and windows with too
    little speech ``no speech``. Undecodable files are in ``errors``, as there. Each recording
    is decoded once (and its speech found once) for its blocks and its timeline; ``out_dir``
    also gets each timeline's CSV and PNG (listed under ``timelines``), a recording too short
    for a block included, as :func:`~ser.inference.timeline.write_timelines` writes them.
    ``min_confidence`` (None: off) marks blocks and windows whose top probability is below it
    ``unsure``.
    """
    rate, block_seconds, pad = (int(predictor.sample_rate), predictor.block_seconds,
                                predictor.pad_min_fraction)
    paths = audio_paths(target)
    result = {"classes": list(predictor.classes), "sample_rate": rate, "block_seconds": block_seconds,
              "recordings": [], "errors": []}
    written, resampled = [], []
    for path, name in zip(paths, unique_names(paths)):
        try:
            audio, source = decode_audio(path, rate)
            mask = None if gate is None else gate.mask(audio)
            line = timeline(predictor, audio, window_s, hop_s, smooth, gate, mask,
                            min_confidence=min_confidence)
            if out_dir is not None:
                written.append(write_timeline_files(line, Path(out_dir), name, path))
                if resampled_from(source, rate):
                    resampled.append(f"{path.name} ({source.split(',')[0]})")
            rec = predict_recording(predictor, path, rate, block_seconds, pad, gate, audio, source, mask,
                                    min_confidence=min_confidence)
        except SerError as exc:  # undecodable, empty or too short: report, go on with the rest
            result["errors"].append({"path": str(path), "error": str(exc)})
            continue
        rec["timeline"] = timeline_summary(line)
        result["recordings"].append(rec)
    if out_dir is not None:
        note_resampled(resampled, rate)
        result["timelines"] = written
    return result


def predict_upload(predictor, upload, name: str, hop_s: float = DEFAULT_HOP_S, gate=None,
                   max_seconds: float | None = None, batch_size: int = 8,
                   min_confidence: float | None = None) -> dict:
    """What :func:`predict_recordings` gives for one recording, from an open binary file
    (``upload``, e.g. a server's spooled request body) named ``name``: decoded once, by
    libsndfile alone (no fallback decoder is loaded for a client's bytes), at most
    ``max_seconds`` long, ``batch_size`` blocks or windows at a time to the network (a runtime
    such as onnxruntime keeps the working memory of its largest batch), ``min_confidence`` as
    there (None: no threshold). Raises SerError
    (:class:`~ser.audio.io.AudioTooLong` past ``max_seconds``) instead of listing an error."""
    rate = int(predictor.sample_rate)
    audio, source = decode_audio(upload, rate, max_seconds, name=name, fallback=False)
    mask = None if gate is None else gate.mask(audio)
    rec = predict_recording(predictor, Path(name), rate, predictor.block_seconds,
                            predictor.pad_min_fraction, gate, audio, source, mask, batch_size,
                            min_confidence)
    rec["path"] = name
    rec["timeline"] = timeline_summary(timeline(predictor, audio, None, hop_s, 0, gate, mask, batch_size,
                                                min_confidence))
    return {"classes": list(predictor.classes), "sample_rate": rate,
            "block_seconds": predictor.block_seconds, "recordings": [rec], "errors": []}
