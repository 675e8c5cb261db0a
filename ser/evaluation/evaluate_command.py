"""What ``python evaluate.py`` does with its config: evaluate a checkpoint, summarise a sweep, or
classify recordings. See conf/evaluate.yaml for the keys and README.md ("Evaluate") for examples.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ser.errors import SerError

# Groups of the training config evaluate.py lets you swap (conf/evaluate.yaml's defaults list).
SWAPPABLE_GROUPS = ("dataset", "noise", "vad", "calibration")


def training_overrides(cfg: DictConfig) -> tuple[dict[str, str], dict[str, Any]]:
    """(group swaps, dotted keys) the user gave for the checkpoint's training config.

    Only what was typed on the command line counts (Hydra records it), so the placeholders in
    conf/evaluate.yaml never replace the checkpoint's own values.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}, {}
    hc = HydraConfig.get()
    own = set(cfg.get("training_keys") or [])
    swaps = {g: hc.runtime.choices[g] for g in SWAPPABLE_GROUPS if hc.runtime.choices.get(g)}
    dotted = {}
    for item in hc.overrides.task:
        key = item.split("=", 1)[0].lstrip("+~")
        if "." in key and key.split(".", 1)[0] in own:
            dotted[key] = OmegaConf.select(cfg, key)
    return swaps, dotted


def vad_choice(cfg: DictConfig) -> str:
    """The detector the command line chose (``vad=silero``: conf/vad/silero.yaml, whose
    ``_target_`` is ``ser.audio.speech_detectors.silero``), else ``auto``."""
    node = cfg.get("vad")
    if node is None or not node.get("_target_"):
        return "auto"
    name = str(node["_target_"]).rsplit(".", 1)[-1]
    return "none" if name == "no_detector" else name


def _check_mode(cfg: DictConfig) -> str:
    if cfg.output not in ("table", "json"):
        raise SerError(f"output={cfg.output!r}: use output=table (Markdown tables) or output=json.")
    if cfg.sweep and (cfg.ckpt or cfg.audio):
        raise SerError("Give either sweep=DIR (summarise a sweep) or ckpt=PATH (evaluate a "
                       "checkpoint, with audio=FILE|DIR to classify recordings), not both.")
    if cfg.get("ensemble"):
        if cfg.sweep or cfg.ckpt or cfg.audio:
            raise SerError("ensemble=[DIR, DIR, ...] writes an ensemble's runs on its own: give it "
                           "with out_dir=DIR and without sweep=, ckpt= or audio=.")
        return "ensemble"
    if cfg.sweep:
        return "sweep"
    if cfg.audio and not cfg.ckpt:
        raise SerError("audio= needs the model to use: add ckpt=PATH (a .ckpt file or a run "
                       "directory written by train.py, or an exported .onnx file).")
    if cfg.ckpt:
        return "audio" if cfg.audio else "checkpoint"
    raise SerError("Nothing to evaluate: give ckpt=PATH (test sets of the data it was trained "
                   "on), sweep=DIR (mean ± std over folds and the regime figure) or ckpt=PATH "
                   "audio=FILE|DIR (emotions of recordings).")


def summarise_runs(cfg: DictConfig) -> tuple[dict, str]:
    """``sweep=DIR``: every finished run below it, mean ± std over folds, the regime figure."""
    from ser.reporting.sweep_report import describe_summary, summarise_sweep

    paper = OmegaConf.to_container(cfg.paper_figures) if cfg.paper_reference else None
    model_keys = cfg.figure.get("model_keys")
    result = summarise_sweep(cfg.sweep, list(cfg.sweep_ignore), cfg.out_dir,
                             metric=cfg.figure.metric, regime_keys=list(cfg.figure.regime_keys),
                             paper_figures=paper,
                             statistics=OmegaConf.to_container(cfg.statistics)
                             if cfg.get("statistics") else None,
                             retests=bool(cfg.get("retests")),
                             **({} if model_keys is None else {"model_keys": list(model_keys)}))
    return result, describe_summary(result)


def score_checkpoint(cfg: DictConfig) -> tuple[dict, str]:
    """``ckpt=PATH``: the test sets of the data it was trained on, as the user changed them."""
    from ser.evaluation.checkpoint_eval import describe_evaluation, evaluate_checkpoint

    swaps, dotted = training_overrides(cfg)
    result = evaluate_checkpoint(cfg.ckpt, swaps, dotted, cfg.out_dir, verbose=cfg.output != "json")
    return result, describe_evaluation(result)


def classify_recordings(cfg: DictConfig) -> tuple[dict, str]:
    """``ckpt=PATH audio=FILE|DIR``: each recording's blocks and emotion, and its timeline files;
    with ``min_confidence=``, blocks and windows whose top probability is below it are ``unsure``.

    A recording that gave no prediction raises its SerError after the others are described
    (:func:`evaluate` prints the text first); none at all raises at once."""
    from ser.evaluation.checkpoint_eval import default_output_dir
    from ser.inference.predictor import load_predictor, model_file
    from ser.inference.recordings import (audio_paths, predict_audio, predictions_markdown,
                                          raise_for_errors, write_predictions)
    from ser.inference.speech_gate import inference_gate
    from ser.inference.timeline import write_timelines
    from ser.inference.windows import model_threshold, resolve_min_confidence

    setting = cfg.get("min_confidence")
    resolve_min_confidence(setting, None)  # a bad one is reported before the model loads
    predictor = load_predictor(cfg.ckpt)  # a run directory, a .ckpt or a .onnx file
    threshold = resolve_min_confidence(setting, model_threshold(predictor))
    gate = inference_gate(vad_choice(cfg), cfg.get("min_speech"), predictor.sample_rate)
    result = predict_audio(predictor, cfg.audio, gate, threshold)
    # timelines: under the run's evaluation/ folder unless out_dir= says otherwise, for every
    # decodable file, also one too short for a block (one zero-padded window)
    where = Path(cfg.out_dir) if cfg.out_dir else default_output_dir(
        model_file(predictor) or Path(cfg.ckpt), {})
    hop = 0.25 if cfg.get("hop") is None else float(cfg.hop)
    timelines = write_timelines(predictor, audio_paths(cfg.audio), where, cfg.get("window"),
                                hop, int(cfg.get("smooth") or 0), gate, threshold)
    result["timelines"] = timelines
    wrote = (f"Wrote {len(timelines)} timeline(s) (<name>.timeline.csv, <name>.timeline.png) "
             f"to {where}" + "".join(f"\n- {Path(t['path']).name}: {t['note']}"
                                     for t in timelines if t["note"]))
    if not result["recordings"]:
        if timelines:
            print(wrote, flush=True)
        raise_for_errors(result)
    text = predictions_markdown(result) + "\n\n" + wrote
    if cfg.out_dir and result["recordings"]:
        written = write_predictions(result, Path(cfg.out_dir))
        text += f"\n\nWrote {', '.join(p.name for p in written)} to {cfg.out_dir}"
    return result, text


def build_ensemble(cfg: DictConfig) -> tuple[dict, str]:
    """``ensemble=[DIR, DIR] out_dir=DIR``: the members' test probabilities averaged per fold,
    written as runs (ser/evaluation/ensemble.py)."""
    from ser.evaluation.ensemble import describe_ensemble, write_ensemble

    members = cfg.ensemble
    members = [members] if isinstance(members, str) else list(members)
    result = write_ensemble(members, cfg.out_dir)
    return result, describe_ensemble(result)


MODES = {"sweep": summarise_runs, "checkpoint": score_checkpoint, "audio": classify_recordings,
         "ensemble": build_ensemble}


def evaluate(cfg: DictConfig) -> dict:
    """Run the mode the config asks for; print its table (or JSON); return the result."""
    mode = _check_mode(cfg)
    as_json = cfg.output == "json"
    # JSON mode keeps stdout for the JSON document: progress and summaries go to stderr
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:
        result, text = MODES[mode](cfg)
    print(json.dumps(result, indent=2) if as_json else text, flush=True)
    if mode == "audio":
        from ser.inference.recordings import raise_for_errors

        raise_for_errors(result)  # after the other recordings' predictions were printed
    return result
