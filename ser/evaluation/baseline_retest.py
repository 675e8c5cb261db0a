"""``evaluate.py ckpt=<baseline run> <changes>``: a fitted baseline re-tested on changed test sets.

A baseline run keeps its fitted extractor + SVM (``checkpoints/baseline.pkl``) and its resolved
config (``config.yaml``), so it can be re-tested as a network's checkpoint is: other noise, test
SNRs, the speech gate's blocks, overlapping windows for the utterance votes (``data.test_hop``),
without refitting. The same data module rebuilds the fold's test sets, features come from the
same disk cache (a re-test adds only the items the original tests did not hold), and the files
written are a network re-test's, so ``evaluate.py sweep=DIR retests=true`` pools both alike.
An estimator fitted with ``model.speaker_norm`` standardises each rebuilt test set per speaker
over that set's own blocks, as its run did (:func:`ser.baseline.run.score_test_sets`); one
pickled before the setting existed has it off.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Mapping

from omegaconf import OmegaConf

from ser.configs import plain
from ser.errors import SerError
from ser.run_layout import BASELINE_FILE, CONFIG_FILE, RUN_FILE, checkpoint_dir, run_dir_of


def baseline_estimator_file(path: Path) -> Path | None:
    """The fitted estimator of a baseline run given as its folder or its pickle; None otherwise."""
    path = Path(path).expanduser()
    if path.name == BASELINE_FILE and path.is_file():
        return path
    for candidate in (checkpoint_dir(path) / BASELINE_FILE, path / BASELINE_FILE):
        if path.is_dir() and candidate.is_file():
            return candidate
    return None


def _run_files(estimator: Path) -> tuple[dict, dict]:
    """(config.yaml, run.json) of the run that fitted ``estimator``, with a clear error when the
    run folder lacks them (a copied pickle on its own cannot rebuild its test sets)."""
    run_dir = run_dir_of(estimator)
    try:
        config = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE), resolve=False)
        record = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise SerError(f"{estimator} is a baseline's fitted estimator, but its run folder {run_dir} "
                       f"lacks a readable {CONFIG_FILE} or {RUN_FILE} ({exc}), so the test sets it "
                       "was scored on cannot be rebuilt. Re-test the whole run folder train.py "
                       "wrote, or train the baseline again with the new settings.") from None
    return config, record


def retest_baseline(path: Path, group_choices: Mapping[str, str] | None,
                    overrides: Mapping[str, Any] | None, out_dir: str | Path | None,
                    verbose: bool = True) -> dict:
    """Score a baseline run's fitted estimator on its fold's test sets, as changed by
    ``group_choices``/``overrides`` (see :func:`ser.evaluation.checkpoint_eval.evaluate_checkpoint`);
    write the files a network re-test writes. Returns evaluation.json's content + ``files``."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from ser.baseline.extraction import feature_cache
    from ser.baseline.run import score_test_sets
    from ser.evaluation.checkpoint_eval import default_output_dir, write_evaluation
    from ser.evaluation.training_config import rebuild_training_config
    from ser.models.checkpoints import check_classes

    estimator = baseline_estimator_file(path)
    config, record = _run_files(estimator)
    changes = {**dict(group_choices or {}), **{k: plain(v) for k, v in (overrides or {}).items()}}
    cfg = rebuild_training_config(config, group_choices, overrides,
                                  recorded_choices=record.get("choices") or {})
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = instantiate(cfg.data, verbose=verbose)
    datamodule.setup("test")
    if record.get("classes"):
        check_classes(record["classes"], datamodule.classes, estimator)
    try:
        with open(estimator, "rb") as f:
            model = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise SerError(f"Could not load the baseline estimator {estimator} ({exc}); the file is "
                       "damaged or was written by another version. Train the baseline again.") from None
    try:
        metrics, predictions = score_test_sets(model, datamodule, feature_cache(model, datamodule.cache_dir),
                                               f"fold {cfg.fold} of dataset={cfg.dataset.name}")
    finally:
        if hasattr(model, "close"):
            model.close()
    out_dir = Path(out_dir) if out_dir else default_output_dir(estimator, changes)
    return write_evaluation(out_dir, estimator, str(cfg.run_name), list(datamodule.classes), changes,
                            metrics, predictions)
