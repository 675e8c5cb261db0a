"""train_baseline(cfg): one conventional run, from corpus to metrics.json, in seconds.

It builds the same data module the deep runs build, so the blocks, the fold, the training noise
(the first epoch's draw: the SVM sees each training item once) and the fixed noisy test sets
are the deep model's. Blocks are mixed exactly as the network's inputs are
(:func:`ser.audio.mixing.mix_at_snr`), then turned into features (MFCC statistics, openSMILE
functionals) instead of images, cached on disk by their audio (:mod:`ser.baseline.extraction`).
The SVM's settings are chosen on the fold's validation part (:mod:`ser.baseline.estimator`),
never on the test sets; the choice and every candidate's validation UA go to run.json's
``selection``. Like a network run, a baseline run writes predictions.csv (every test block's
class probabilities per test set).
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ser.atomic import write_atomic
from ser.baseline.estimator import SvmBaseline
from ser.config_upgrade import with_target
from ser.baseline.extraction import FEATURE_CHUNK, feature_cache, mixed_features
from ser.errors import SerError
from ser.models.metrics import block_metrics, score_test_set
from ser.reporting.predictions import Predictions, test_set_predictions
from ser.reporting.tables import markdown_table
from ser.training.loggers import build_logger, finish_wandb
from ser.run_layout import BASELINE_FILE, checkpoint_dir
from ser.training.run_files import finished_metrics, run_record, write_run_files
from ser.training.runner import run_directory

__all__ = ["FEATURE_CHUNK", "build_baseline", "mixed_features", "train_baseline"]
MODEL_META_KEYS = ("name",)    # model config keys that describe, not build, the estimator
# Config groups only the deep network reads (its optimiser, trainer, augmentation, checkpoint
# selection and callbacks); a baseline run's config.yaml leaves them out, so that overrides meant for the
# network (trainer.max_steps=..., optim.lr=...) never split a sweep's baseline runs into
# groups. Of the network's input features only the sample rate applies.
UNUSED_GROUPS = ("optim", "trainer", "augment", "select", "callbacks")


def build_baseline(model: DictConfig, sample_rate: int) -> SvmBaseline:
    """The estimator ``model._target_`` names, built at the corpus ``sample_rate`` (Hz)."""
    params = with_target("model", OmegaConf.to_container(model, resolve=True))
    for key in MODEL_META_KEYS:
        params.pop(key, None)
    if not params["_target_"]:
        raise SerError(f"model={model.get('name')} is a baseline but names no `_target_`: name the "
                       "class that builds the estimator, e.g. _target_: ser.baseline.svm.MfccSvm "
                       "(see conf/model/mfcc_svm.yaml).")
    return instantiate(params, sample_rate=int(sample_rate))


def baseline_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config a baseline run records in config.yaml (see ``UNUSED_GROUPS``)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for group in UNUSED_GROUPS:
        resolved.pop(group, None)
    if isinstance(resolved.get("features"), dict):
        resolved["features"] = {"sample_rate": resolved["features"].get("sample_rate")}
    return resolved


def save_estimator(model: SvmBaseline, path: Path) -> None:
    """Pickle the fitted extractor + SVM via a temporary file, so a killed run leaves no half file."""
    write_atomic(path, lambda f: pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL))


def _log(cfg: DictConfig, run_dir: Path, group: str | None, validation: dict, metrics: dict,
         classes: list[str]) -> None:
    logger = build_logger(cfg, run_dir, group)
    if not logger:
        return
    from ser.training.previews import log_test_tables

    flat = {f"val/{k}": v for k, v in validation.items()}
    flat.update({f"test/{name}/{k}": v for name, m in metrics.items() for k, v in m.items()
                 if isinstance(v, float)})
    logger.log_hyperparams(baseline_config(cfg))
    logger.log_metrics(flat, step=0)
    log_test_tables(logger, metrics, classes)
    logger.save()
    logger.finalize("success")


def score_test_sets(model: SvmBaseline, datamodule, cache, fold: str
                    ) -> tuple[dict[str, dict], Predictions]:
    """Each test set's metrics (metrics.json) and all test blocks' probabilities
    (predictions.csv: one row per test block and test set, in the loaders' order)."""
    metrics: dict[str, dict] = {}
    parts = []
    for name, loader in zip(datamodule.test_set_names, datamodule.test_dataloader()):
        test = mixed_features(model, loader, cache, where=f"test set {name} of {fold}")
        probs, _ = model.predict_scores(test["features"])
        metrics[name] = score_test_set(torch.from_numpy(probs), torch.from_numpy(test["label"]),
                                       torch.from_numpy(test["utterance"]),
                                       torch.from_numpy(test["offset"]))
        parts.append(test_set_predictions(datamodule, name, probs, test["utterance"],
                                          test["block"], test["label"], offset=test["offset"]))
    return metrics, Predictions.concat(parts)


def train_baseline(cfg: DictConfig) -> dict:
    """Fit the configured estimator on the fold's training items (its settings chosen on the
    validation items), score validation and every test set, and write metrics.json, run.json,
    predictions.csv, split.csv, config.yaml and checkpoints/baseline.pkl."""
    started = time.time()
    run_dir, group = run_directory(cfg)
    done = finished_metrics(run_dir) if cfg.get("resume") else None
    if done is not None:
        return done
    if cfg.get("ckpt_path"):
        raise SerError(f"ckpt_path={cfg.ckpt_path} does not apply to model={cfg.model.name}: a "
                       "baseline run has no network checkpoint to continue and refits from "
                       "scratch in seconds. Drop ckpt_path (resume=true still skips finished runs).")

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = build_baseline(cfg.model, datamodule.sample_rate)  # a missing library stops here
    datamodule.setup("fit")
    classes = datamodule.classes
    data_ready = time.time()
    cache = feature_cache(model, datamodule.cache_dir)
    fold = f"fold {cfg.fold} of dataset={cfg.dataset.name}"
    try:
        train = mixed_features(model, datamodule.train_dataloader(), cache,
                               where=f"the training part of {fold}")
        val = mixed_features(model, datamodule.val_dataloader(), cache,
                             where=f"the validation part of {fold}")
        extracted = time.time()
        model.fit(train["features"], train["label"], len(classes), val["features"], val["label"])
        fitted = time.time()
        _, val_preds = model.predict_scores(val["features"])
        val_all = block_metrics(torch.from_numpy(val_preds), torch.from_numpy(val["label"]),
                                len(classes))
        validation = {k: val_all[k] for k in ("weighted_f1", "ua", "accuracy")}
        metrics, predictions = score_test_sets(model, datamodule, cache, fold)
    finally:
        if hasattr(model, "close"):  # worker processes of a parallel extractor
            model.close()

    # the run files after the estimator: metrics.json, written last, marks the run finished
    save_estimator(model, checkpoint_dir(run_dir) / BASELINE_FILE)
    record = run_record(cfg, datamodule, time.time() - started)
    record.update({"validation": validation, "n_train_items": int(len(train["label"])),
                   "n_features": int(train["features"].shape[1]), "estimator": repr(model),
                   "selection": model.selection, "feature_cache": cache.summary(),
                   "data_seconds": round(data_ready - started, 2),
                   "feature_seconds": round(extracted - data_ready, 2),
                   "fit_seconds": round(fitted - extracted, 2)})
    write_run_files(run_dir, datamodule, OmegaConf.to_yaml(OmegaConf.create(baseline_config(cfg))),
                    record, metrics, predictions=predictions)
    try:
        _log(cfg, run_dir, group, validation, metrics, classes)
    finally:
        finish_wandb()
    print(f"Chosen on validation UA: {model.svm_repr()}", flush=True)
    print(f"Validation (block level): weighted F1 {100 * validation['weighted_f1']:.2f}, "
          f"UA {100 * validation['ua']:.2f}, accuracy {100 * validation['accuracy']:.2f}", flush=True)
    print(markdown_table(metrics, title=f"{cfg.run_name} ({cfg.model.name}): test sets ({run_dir})"),
          flush=True)
    return metrics
