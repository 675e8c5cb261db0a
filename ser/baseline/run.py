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

With ``model.speaker_norm`` the features are standardised per speaker before the SVM
(:func:`speaker_features`): training speakers by their training blocks, validation speakers by
their validation blocks (each SNR copy by its own statistics), and each test set's speakers by
their own unlabelled blocks of that test set (transductive). A block's speaker is its utterance's, in the table the block's set
indexes: the run's corpus for training, validation and the own test sets, the other corpus for
``<corpus>/...`` sets (:meth:`EmotionDataModule.utterance_speakers`). :func:`score_test_sets` does it,
so re-tests of a saved estimator (``evaluate.py ckpt=``) normalise exactly as the run did.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from ser.atomic import write_atomic
from ser.baseline.estimator import SvmBaseline
from ser.configs import build
from ser.baseline.extraction import FEATURE_CHUNK, feature_cache, mixed_features
from ser.baseline.speaker_norm import unknown_speakers
from ser.errors import SerError
from ser.models.metrics import block_metrics, score_test_set
from ser.reporting.generalisation import gap_words, matching_test_sets, validation_gap
from ser.reporting.predictions import Predictions, test_set_predictions
from ser.reporting.shared_text import shared_text_words
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
UNUSED_GROUPS = ("optim", "trainer", "augment", "select", "callbacks", "calibration")


def build_baseline(model: DictConfig, sample_rate: int) -> SvmBaseline:
    """The estimator ``model._target_`` names, built at the corpus ``sample_rate`` (Hz)."""
    params = OmegaConf.to_container(model, resolve=True)
    for key in MODEL_META_KEYS:
        params.pop(key, None)
    if not params.get("_target_"):
        raise SerError(f"model={model.get('name')} is a baseline but names no `_target_`: name the "
                       "class that builds the estimator, e.g. _target_: ser.baseline.svm.MfccSvm "
                       "(see conf/model/mfcc_svm.yaml).")
    return build(params, sample_rate=int(sample_rate))


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


def item_speakers(speakers: list[str], utterance: np.ndarray) -> np.ndarray:
    """(N,) object array: the speaker of each item, from its utterance index (N,) into
    ``speakers`` (each utterance's, :meth:`EmotionDataModule.utterance_speakers`); "" where
    unknown."""
    return np.array([str(speakers[int(u)] or "") for u in utterance], dtype=object)


def speaker_features(model: SvmBaseline, part: dict[str, np.ndarray], speakers: list[str], where: str,
                     unknown: list[str], grid_only: bool = False) -> np.ndarray:
    """(N, D) features of one part (as :func:`mixed_features` returns it) as the SVM sees
    them: unchanged without ``model.speaker_norm``; else standardised per speaker and SNR copy
    over this part's own items (:meth:`SvmBaseline.normalise`): a training speaker's clean
    blocks and each of its noisy copies by their own statistics, as each test set (one SNR) is.
    ``speakers``: each utterance's speaker, of the table the part's ``utterance`` column indexes. ``grid_only``: statistics from the grid blocks alone
    (``offset`` 0), so a test set's extra windows (``data.test_hop``) leave its blocks' scores
    as they were. Items of unknown speakers are standardised over the whole part; ``where`` is
    added to ``unknown`` then, for one line on stdout."""
    if not model.speaker_norm:
        return part["features"]
    items = item_speakers(speakers, part["utterance"])
    unknown_items = unknown_speakers(items)
    missing = int(unknown_items.sum())
    if "snr" in part:  # one recording condition at a time, as each test set is one
        condition = np.array([f"@{float(v):g}" for v in part["snr"]], dtype=object)
        items = np.where(unknown_items, items, items + condition)
    if missing:
        unknown.append(f"{where} ({missing} of {len(items)} items)")
    fit = np.asarray(part["offset"]) == 0 if grid_only else None
    return model.normalise(part["features"], items, fit)


def say_unknown_speakers(unknown: list[str]) -> None:
    """One line on stdout naming the parts whose items had no speaker (see :func:`speaker_features`)."""
    if unknown:
        print("Speaker normalisation (model.speaker_norm): no speaker is known for some items of "
              f"{'; '.join(unknown)}; those items were standardised over their whole set instead.",
              flush=True)


def score_test_sets(model: SvmBaseline, datamodule, cache, fold: str,
                    unknown: list[str] | None = None) -> tuple[dict[str, dict], Predictions]:
    """Each test set's metrics (metrics.json) and all test blocks' probabilities
    (predictions.csv: one row per test block and test set, in the loaders' order).

    With ``model.speaker_norm`` each test set's features are standardised per speaker over
    that set's own blocks, the speakers read from the table the set indexes (another corpus's
    for ``<corpus>/...`` sets). Sets with items of unknown speakers are added to ``unknown``;
    without a list, they are said on stdout here."""
    metrics: dict[str, dict] = {}
    parts = []
    missing: list[str] = [] if unknown is None else unknown
    for name, loader in zip(datamodule.test_set_names, datamodule.test_dataloader()):
        test = mixed_features(model, loader, cache, where=f"test set {name} of {fold}")
        features = speaker_features(model, test, datamodule.utterance_speakers(name),
                                    f"test set {name}", missing, grid_only=True)
        probs, _ = model.predict_scores(features)
        metrics[name] = score_test_set(torch.from_numpy(probs), torch.from_numpy(test["label"]),
                                       torch.from_numpy(test["utterance"]),
                                       torch.from_numpy(test["offset"]))
        parts.append(test_set_predictions(datamodule, name, probs, test["utterance"],
                                          test["block"], test["label"], offset=test["offset"]))
    if unknown is None:
        say_unknown_speakers(missing)
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
    datamodule = build(cfg.data)
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
        unknown: list[str] = []  # parts with items of unknown speakers (model.speaker_norm)
        speakers = datamodule.utterance_speakers()
        train["features"] = speaker_features(model, train, speakers, "the training part", unknown)
        val["features"] = speaker_features(model, val, speakers, "the validation part", unknown)
        model.fit(train["features"], train["label"], len(classes), val["features"], val["label"])
        fitted = time.time()
        _, val_preds = model.predict_scores(val["features"])
        val_all = block_metrics(torch.from_numpy(val_preds), torch.from_numpy(val["label"]),
                                len(classes))
        validation = {k: val_all[k] for k in ("weighted_f1", "ua", "accuracy")}
        metrics, predictions = score_test_sets(model, datamodule, cache, fold, unknown)
        say_unknown_speakers(unknown)
    finally:
        if hasattr(model, "close"):  # worker processes of a parallel extractor
            model.close()

    # the run files after the estimator: metrics.json, written last, marks the run finished
    save_estimator(model, checkpoint_dir(run_dir) / BASELINE_FILE)
    record = run_record(cfg, datamodule, time.time() - started)
    record.update({"validation": validation, "n_train_items": int(len(train["label"])),
                   "n_features": int(train["features"].shape[1]), "estimator": repr(model),
                   "selection": model.selection, "feature_cache": cache.summary(),
                   "speaker_norm": bool(model.speaker_norm),
                   "data_seconds": round(data_ready - started, 2),
                   "feature_seconds": round(extracted - data_ready, 2),
                   "fit_seconds": round(fitted - extracted, 2),
                   "generalisation": validation_gap(
                       validation["ua"], metrics, getattr(datamodule.plan, "validation", None),
                       matching_test_sets(cfg.snr, cfg.data.get("all_snrs", (15, 20, 40))))})
    write_run_files(run_dir, datamodule, OmegaConf.to_yaml(OmegaConf.create(baseline_config(cfg))),
                    record, metrics, predictions=predictions)
    try:
        _log(cfg, run_dir, group, validation, metrics, classes)
    finally:
        finish_wandb()
    print(f"Chosen on validation UA: {model.svm_repr()}", flush=True)
    if model.speaker_norm:
        print("Features standardised per speaker first (model.speaker_norm): each test speaker by "
              "its own unlabelled blocks of each test set (transductive).", flush=True)
    print(f"Validation (block level): weighted F1 {100 * validation['weighted_f1']:.2f}, "
          f"UA {100 * validation['ua']:.2f}, accuracy {100 * validation['accuracy']:.2f}", flush=True)
    print(markdown_table(metrics, title=f"{cfg.run_name} ({cfg.model.name}): test sets ({run_dir})"),
          flush=True)
    print(gap_words(record["generalisation"]), flush=True)
    said = shared_text_words(metrics)
    if said:
        print(said, flush=True)
    return metrics
