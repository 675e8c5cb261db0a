"""What every run directory holds besides checkpoints: metrics.json and run.json.

run.json records what is needed to trust and reproduce a number: the resolved choices, the
package version, the git commit of the code and a fingerprint of the data it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

import ser

METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it and rename it over
    ``path``: a killed run leaves the old file or the new one, never half of one (and no
    temporary file either)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """metrics.json / run.json, written with :func:`write_atomic`."""
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def git_commit() -> str | None:
    """The commit of the code that ran (with a ``-dirty`` mark), or None outside a checkout."""
    root = Path(__file__).resolve().parents[2]
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


def run_record(cfg, datamodule, wall_time_s: float) -> dict:
    return {
        "dataset": cfg.dataset.name,
        "classes": datamodule.classes,
        "snr": str(cfg.snr),
        "regime": "augmented" if datamodule.train_snrs else "clean",
        "noise_fixed": bool(cfg.noise.get("fixed", False)),
        "split": cfg.split.name,
        "fold": int(cfg.fold),
        "seed": int(cfg.seed),
        "model": cfg.model.name,
        "pretrained": str(cfg.model.get("pretrained", False)),  # a baseline has no weights to start from
        "test_sets": datamodule.test_set_names,
        "version": ser.__version__,
        "git_commit": git_commit(),
        "data_fingerprint": data_fingerprint(datamodule.table, datamodule.blocks),
        "wall_time_s": round(wall_time_s, 2),
    }
