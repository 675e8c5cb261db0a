"""One run type for evaluation: :func:`load_run` gives a network's checkpoint or a baseline's
fitted estimator behind the same methods, so re-testing, reporting and their callers never ask
which kind of run they hold.

A network run keeps its classes, network, front-end and whole training config in the checkpoint;
a baseline run keeps its fitted extractor + SVM (``checkpoints/baseline.pkl``) beside the run's
resolved ``config.yaml`` and ``run.json``. Either way the training config is brought to today's
form where it is read (:mod:`ser.config_upgrade`, the one upgrader), the
fold's data module is rebuilt from it, and :meth:`Run.score` scores every test set of it.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from omegaconf import OmegaConf

from ser.config_upgrade import current_form
from ser.configs import plain
from ser.errors import SerError
from ser.models.checkpoints import find_checkpoint, load_weights, read_checkpoint, trained_hyper_parameters
from ser.reporting.predictions import Predictions
from ser.run_layout import BASELINE_FILE, CONFIG_FILE, RUN_FILE, checkpoint_dir, run_dir_of


class Run(Protocol):
    """A finished training run as evaluation sees it, whatever its model."""

    path: Path                   # the checkpoint (.ckpt) or the fitted estimator (baseline.pkl)
    classes: list[str]           # the class names, in the model's output order ([] if unrecorded)
    config: Mapping[str, Any]    # the training config it was run with (as saved, unresolved)
    choices: Mapping[str, str]   # the file of each config group it was composed from

    def score(self, datamodule, cfg, out_dir: Path, verbose: bool) -> tuple[dict[str, dict], Predictions]:
        """Each test set's metrics (metrics.json's form) and every test block's probabilities."""

    def describe(self) -> str:
        """One line naming the run's model and file, for logs and errors."""


def load_classifier(path: str | Path):
    """(EmotionClassifier in eval mode, its hyper-parameters) from a checkpoint written by train.py.

    The network is built with ``pretrained=false``: every weight comes from the checkpoint,
    so evaluating never downloads or needs the ImageNet weights it was fine-tuned from.
    """
    return _classifier(read_checkpoint(path), path)


def _classifier(ckpt: dict, path: Path):
    from ser.models.module import EmotionClassifier

    hp = trained_hyper_parameters(ckpt, path, ("classes", "model", "optim", "features"))
    model = EmotionClassifier(classes=hp["classes"], model={**hp["model"], "pretrained": False},
                              optim=hp["optim"], features=hp["features"], run_config=hp.get("run_config"),
                              calibration=hp.get("calibration"))
    load_weights(model, ckpt, path)
    model.eval()
    return model, hp


def _run_record(run_dir: Path) -> dict:
    """run.json of a run folder; {} when there is none (a run still training, a lone file)."""
    try:
        record = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


@dataclass
class NetworkRun:
    """A network's checkpoint: the classifier is loaded when first scored."""

    path: Path
    classes: list[str]
    config: Mapping[str, Any]
    choices: Mapping[str, str]
    hyper_parameters: dict = field(repr=False, default_factory=dict)
    checkpoint: dict = field(repr=False, default_factory=dict)
    calibrate: Mapping[str, Any] | None = None   # calibration=...: a layer fitted now in place of the run's
    calibration: dict | None = None              # what score() fitted (run.json's record form)

    @classmethod
    def load(cls, path: Path) -> "NetworkRun":
        path = find_checkpoint(path)
        ckpt = read_checkpoint(path)
        hp = trained_hyper_parameters(ckpt, path, ("classes", "model", "optim", "features"))
        if not hp.get("run_config"):
            raise SerError(f"Checkpoint {path} does not carry its training config, so the data it was "
                           "tested on cannot be rebuilt. Retrain with the current train.py, or classify "
                           "recordings with it instead (audio=FILE).")
        # the groups the run was composed from, as Hydra recorded them: in the checkpoint, else
        # (checkpoints written before they carried it) in the run's run.json
        choices = dict(hp.get("choices") or _run_record(run_dir_of(path)).get("choices") or {})
        return cls(path, list(hp["classes"]), hp["run_config"], choices, hp, ckpt)

    def score(self, datamodule, cfg, out_dir: Path, verbose: bool) -> tuple[dict[str, dict], Predictions]:
        from ser.configs import build
        from ser.reporting.predictions import run_predictions
        from ser.training.precision import trainer_precision

        model, _ = _classifier(self.checkpoint, self.path)
        self.calibration = None
        trainer = build(cfg.trainer, precision=trainer_precision(cfg.trainer), logger=False,
                        callbacks=[], enable_checkpointing=False,
                        enable_progress_bar=bool(cfg.trainer.enable_progress_bar) and verbose,
                        default_root_dir=str(out_dir))
        if self.calibrate is not None:
            # calibration=... on the command line: that layer, fitted now on the run's validation
            # part, in place of the run's own (none: no layer); the checkpoint is not changed
            from ser.models.builders import build_calibration
            from ser.training.calibration_fit import fit_calibration

            model.calibration = build_calibration(plain(self.calibrate), len(model.classes))
            self.calibration = fit_calibration(trainer, model, datamodule, None,
                                               (cfg.get("abstain") or {}).get("selective_accuracy"))
        trainer.test(model, datamodule=datamodule, verbose=False)
        return model.test_results, run_predictions(datamodule, model.test_items)

    def describe(self) -> str:
        return f"network {self.hyper_parameters['model'].get('name', '?')} from {self.path}"


@dataclass
class BaselineRun:
    """A baseline's fitted estimator: scored on the same disk feature cache its run filled, so a
    re-test adds only the items the original tests did not hold. An estimator fitted with
    ``model.speaker_norm`` standardises each rebuilt test set per speaker over that set's own
    blocks, as its run did (:func:`ser.baseline.run.score_test_sets`)."""

    path: Path
    classes: list[str]
    config: Mapping[str, Any]
    choices: Mapping[str, str]

    @classmethod
    def load(cls, estimator: Path) -> "BaselineRun":
        run_dir = run_dir_of(estimator)
        try:
            config = current_form(OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE), resolve=False),
                                  source=run_dir)
            record = json.loads((run_dir / RUN_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise SerError(f"{estimator} is a baseline's fitted estimator, but its run folder {run_dir} "
                           f"lacks a readable {CONFIG_FILE} or {RUN_FILE} ({exc}), so the test sets it "
                           "was scored on cannot be rebuilt. Re-test the whole run folder train.py "
                           "wrote, or train the baseline again with the new settings.") from None
        return cls(estimator, list(record.get("classes") or []), config, dict(record.get("choices") or {}))

    def _estimator(self):
        try:
            with open(self.path, "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise SerError(f"Could not load the baseline estimator {self.path} ({exc}); the file is "
                           "damaged or was written by another version. Train the baseline again.") from None

    def score(self, datamodule, cfg, out_dir: Path, verbose: bool) -> tuple[dict[str, dict], Predictions]:
        from ser.baseline.extraction import feature_cache
        from ser.baseline.run import score_test_sets

        model = self._estimator()
        try:
            return score_test_sets(model, datamodule, feature_cache(model, datamodule.cache_dir),
                                   f"fold {cfg.fold} of dataset={cfg.dataset.name}")
        finally:
            if hasattr(model, "close"):
                model.close()

    def describe(self) -> str:
        return f"baseline {self.config.get('model', {}).get('name', '?')} from {self.path}"


def baseline_estimator_file(path: Path) -> Path | None:
    """The fitted estimator of a baseline run given as its folder or its pickle; None otherwise."""
    path = Path(path).expanduser()
    if path.name == BASELINE_FILE and path.is_file():
        return path
    for candidate in (checkpoint_dir(path) / BASELINE_FILE, path / BASELINE_FILE):
        if path.is_dir() and candidate.is_file():
            return candidate
    return None


def load_run(path: str | Path) -> Run:
    """The run at ``path``: a run folder, a network's ``.ckpt`` or a baseline's ``baseline.pkl``
    (a run folder's best checkpoint, else ``last.ckpt``, for a network)."""
    estimator = baseline_estimator_file(Path(path))
    return BaselineRun.load(estimator) if estimator is not None else NetworkRun.load(Path(path))
