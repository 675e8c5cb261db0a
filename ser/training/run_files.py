"""The files a finished run leaves in its directory (names: :mod:`ser.run_layout`).

run.json records what is needed to trust and reproduce a number: the resolved choices, the
package version, the git commit of the code, a fingerprint of the data it saw and the digest of
its split plan; split.csv lists the utterances of each part. metrics.json is written last, so a
run directory that has it is finished (``resume=true`` skips it, sweeps count it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

import ser
from ser.atomic import write_json_atomic, write_text_atomic
from ser.data.split_file import plan_digest, split_csv
from ser.reporting.predictions import Predictions, write_predictions
from ser.reporting.shared_text import shared_text_ua
from ser.run_layout import CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE, RUN_FILE, SPLIT_FILE


def git_commit() -> str | None:
    """The commit of the code that ran (with a ``-dirty`` mark), or None outside a checkout
    (an installed package is not one, even inside some other repository's virtualenv)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return None


def data_fingerprint(table, blocks) -> dict:
    """Count and total duration of utterances per class, plus the block counts and table hash."""
    per_class: dict[str, dict[str, float]] = {}
    for u in table.utterances:
        entry = per_class.setdefault(u.label, {"utterances": 0, "seconds": 0.0})
        entry["utterances"] += 1
        if u.duration == u.duration:  # not NaN
            entry["seconds"] = round(entry["seconds"] + float(u.duration), 3)
    counts = np.bincount(blocks.labels, minlength=len(blocks.classes))
    for c, name in enumerate(blocks.classes):
        per_class.setdefault(name, {"utterances": 0, "seconds": 0.0})["blocks"] = int(counts[c])
    return {"corpus": table.name, "table_hash": table.fingerprint(), "per_class": per_class,
            "skipped_files": len(blocks.skipped)}


def group_choices() -> dict[str, str]:
    """The file chosen for each config group (``{"model": "alexnet", "noise": "demo", ...}``),
    from Hydra's runtime choices; empty outside a Hydra app. This is what records which noise
    or tracker a run used, where configs once carried a ``kind`` key for it."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return {group: str(choice) for group, choice in HydraConfig.get().runtime.choices.items()
            if not group.startswith("hydra") and choice is not None}


def run_record(cfg, datamodule, wall_time_s: float) -> dict:
    return {
        "dataset": cfg.dataset.name,
        "classes": datamodule.classes,
        "snr": str(cfg.snr),
        "regime": "augmented" if datamodule.train_snrs else "clean",
        "noise_fixed": bool(cfg.noise.get("fixed", False)),
        "split": cfg.split.name,
        "split_plan": plan_digest(datamodule.plan, datamodule.blocks,
                                  getattr(getattr(datamodule, "gate", None), "keep", None)),
        "fold": int(cfg.fold),
        "seed": int(cfg.seed),
        "model": cfg.model.name,
        "pretrained": str(cfg.model.get("pretrained", False)),  # a baseline has no weights to start from
        "choices": group_choices(),
        "test_sets": datamodule.test_set_names,
        # each test set's corpus (null: the run's own) and condition: what reports read
        "test_set_details": [t.record() for t in datamodule.test_sets()],
        "test_noise": datamodule.test_bank.digest(),   # which noise files the noisy test sets hold
        "version": ser.__version__,
        "git_commit": git_commit(),
        "data_fingerprint": data_fingerprint(datamodule.table, datamodule.blocks),
        "wall_time_s": round(wall_time_s, 2),
        **speech_record(datamodule),
    }


def speech_record(datamodule) -> dict:
    """run.json's ``speech_gate`` (blocks each class and utterance lost to data.min_speech) and
    ``snr_reference``, only where a run has them: a run without a gate records what it did before."""
    out = {}
    gate = getattr(datamodule, "gate", None)
    if gate is not None:
        out["speech_gate"] = gate.record()
        corpora = getattr(datamodule, "corpus_gates", {})
        if corpora:
            out["speech_gate"]["test_corpora"] = {n: g.record() for n, g in corpora.items()}
    if getattr(datamodule, "snr_reference", "block") != "block":
        out["snr_reference"] = datamodule.snr_reference
    return out


def finished_metrics(run_dir: Path) -> dict | None:
    """The metrics of a run that finished before, or None (``resume=true`` skips such a run)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    print(f"{run_dir} finished before ({METRICS_FILE} exists): skipped.", flush=True)
    return json.loads(path.read_text())


def write_run_files(run_dir: Path, datamodule, config_yaml: str, record: dict, metrics: dict,
                    predictions: Predictions | None = None) -> None:
    """split.csv, predictions.csv, config.yaml and run.json, then metrics.json, each written
    atomically. Where the corpus names texts, each test set's metrics gain ``ua_shared_text``:
    its UA on the blocks whose text several classes speak (``metrics`` is updated in place)."""
    dm = datamodule
    parts = {"train": dm.train_idx, "validation": dm.val_idx, "test": dm.test_idx}
    corpora = getattr(dm, "test_corpora", [])
    ungated = None
    if getattr(dm, "gate", None) is not None:  # the blocks each utterance lost to data.min_speech
        parts.update({f"test:{c.name}": dm.corpus_test_idx(c) for c in corpora})
        ungated = {**dm.ungated, **{f"test:{c.name}": np.arange(len(c.blocks)) for c in corpora}}
    write_text_atomic(run_dir / SPLIT_FILE, split_csv(
        dm.blocks, parts, {c.name: c.blocks for c in corpora}, ungated))
    if predictions is not None:
        write_predictions(run_dir / PREDICTIONS_FILE, predictions)
        for name, ua in shared_text_ua(predictions).items():
            if name in metrics:
                metrics[name]["ua_shared_text"] = ua
    write_text_atomic(run_dir / CONFIG_FILE, config_yaml)
    write_json_atomic(run_dir / RUN_FILE, record)
    write_json_atomic(run_dir / METRICS_FILE, metrics)
