"""The finished runs under a sweep folder, and each run's re-tests, as :class:`FinishedRun`.

A run is a folder holding ``metrics.json`` and ``run.json`` (at any depth); its settings are
its resolved ``config.yaml`` flattened to ``"a.b.c" -> JSON text``, read in today's form
(:func:`ser.config_upgrade.current_form`), so runs of older versions group with new ones. A
re-test (``<run>/evaluation/<name>/`` with ``evaluation.json`` and ``predictions.csv``, written
by ``evaluate.py ckpt=RUN <changes>``) is a run of its own whose settings add the changes under
``retest.``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ser.config_upgrade import current_form
from ser.errors import SerError
from ser.reporting.tables import METRICS
from ser.run_layout import (CONFIG_FILE, EVALUATION_DIR, LAST_CHECKPOINT, METRICS_FILE,
                            PREDICTIONS_FILE, RUN_FILE, run_dir_of)

# The settings prefix of a re-test's changes (``evaluate.py ckpt=RUN vad=silero
# data.min_speech=0.5`` -> ``retest.vad``, ``retest.data.min_speech``): a re-tested group is told
# apart from the run's own tests by them.
RETEST_PREFIX = "retest."


@dataclass
class FinishedRun:
    """One run directory: its test metrics, run record and flattened resolved config. A re-test
    (``path``: ``<run>/evaluation/<name>``) names the run it re-tested in ``run_folder``."""

    path: Path
    metrics: dict
    record: dict
    settings: dict  # "a.b.c" -> JSON text of the value
    run_folder: Path | None = None

    @property
    def folder(self) -> Path:
        """The run's own folder (config.yaml, run.json, split.csv), a re-test's too."""
        return Path(self.run_folder or self.path)


def flatten(config: Mapping, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}`` (values as JSON text, so lists compare too).

    A list of mappings (``data.test_corpora``) flattens by position (``data.test_corpora.0.manifest``),
    so the ignore patterns reach its entries' keys: the same corpus named by a relative and by
    an absolute manifest path is one setting, not two."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) and v for v in value):
            out.update(flatten({str(i): v for i, v in enumerate(value)}, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value, sort_keys=True, default=str)
    return out


def _run_settings(run_dir: Path, record: dict) -> dict[str, str]:
    config = run_dir / CONFIG_FILE
    if config.is_file():
        loaded = yaml.safe_load(config.read_text())
        if isinstance(loaded, Mapping):
            return flatten(current_form(loaded))  # an older run reads like today's
    # no resolved config: the choices run.json records
    return flatten({k: v for k, v in record.items()
                    if k not in ("git_commit", "wall_time_s", "data_fingerprint", "version")})


def has_metrics(metrics: Any) -> bool:
    """Whether ``metrics`` is ``{test_set: {metric: value}}`` with every reported metric."""
    return isinstance(metrics, dict) and all(isinstance(m, dict) and set(METRICS) <= set(m)
                                             for m in metrics.values())


def find_runs(sweep_dir: str | Path, retests: bool = False
              ) -> tuple[list[FinishedRun], list[tuple[Path, str]]]:
    """Finished runs under ``sweep_dir``, and ``(folder, why)`` for run folders left out.

    ``retests``: each run's re-tests (``<run>/evaluation/*/``, written by ``evaluate.py
    ckpt=RUN <changes>`` with ``evaluation.json`` and ``predictions.csv``) count as runs too, with
    the changes as ``retest.*`` settings, so re-tests of every fold group and pool like runs: the
    same checkpoints on other blocks (``data.min_speech``), SNRs or corpora."""
    root = Path(sweep_dir).expanduser()
    if not root.is_dir():
        raise SerError(f"Sweep folder not found: {root}. Pass the hydra.sweep.dir of a "
                       "`train.py -m ...` sweep (e.g. sweep=multirun/2026-01-01/12-00-00).")
    runs, skipped = [], []
    for metrics_file in sorted(root.rglob(METRICS_FILE)):
        run_dir = metrics_file.parent
        try:
            metrics = json.loads(metrics_file.read_text())
            record = json.loads((run_dir / RUN_FILE).read_text())
        except FileNotFoundError:
            skipped.append((run_dir, f"no {RUN_FILE}"))
            continue
        except (json.JSONDecodeError, OSError) as exc:
            skipped.append((run_dir, f"unreadable results ({exc})"))
            continue
        if not has_metrics(metrics):
            skipped.append((run_dir, f"{METRICS_FILE} lacks the metrics {METRICS}"))
            continue
        runs.append(FinishedRun(run_dir, metrics, record, _run_settings(run_dir, record)))
        if retests:
            found, left_out = find_retests(runs[-1])
            runs += found
            skipped += left_out
    finished = {r.path for r in runs} | {p for p, _ in skipped}
    for marker in sorted(root.rglob(LAST_CHECKPOINT)):  # started but never tested
        run_dir = run_dir_of(marker)
        if run_dir not in finished:
            skipped.append((run_dir, f"unfinished (no {METRICS_FILE} yet)"))
    return runs, skipped


def find_retests(run: FinishedRun) -> tuple[list[FinishedRun], list[tuple[Path, str]]]:
    """``run``'s re-tests as runs of their own (metrics from ``evaluation.json``, predictions
    beside it), and ``(folder, why)`` for evaluation folders that are not one (recordings'
    timelines, a re-test written before it kept its predictions)."""
    found, skipped = [], []
    for result in sorted((run.path / EVALUATION_DIR).glob("*/evaluation.json")):
        folder = result.parent
        try:
            evaluation = json.loads(result.read_text())
            metrics, changes = evaluation["metrics"], evaluation.get("changes") or {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped.append((folder, f"unreadable re-test ({exc})"))
            continue
        if not (folder / PREDICTIONS_FILE).is_file():
            skipped.append((folder, f"re-test without {PREDICTIONS_FILE}"))
            continue
        if not has_metrics(metrics):
            skipped.append((folder, f"evaluation.json lacks the metrics {METRICS}"))
            continue
        settings = {**run.settings, **flatten({f"{RETEST_PREFIX}{k}": v for k, v in changes.items()})}
        if not changes:  # the same test sets again: still apart from the run's own tests
            settings[f"{RETEST_PREFIX}changes"] = json.dumps("none")
        record = run.record
        if evaluation.get("test_noise"):   # the noise it was re-tested with (noise.test_root=...)
            record = {**record, "test_noise": evaluation["test_noise"]}
        found.append(FinishedRun(folder, metrics, record, settings, run_folder=run.path))
    return found, skipped
