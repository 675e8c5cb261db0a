"""train(cfg): the whole life of one run, from corpus to metrics.json."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from ser.configs import build
from ser.training.calibration_fit import calibration_words, fit_calibration
from ser.training.core_share import CoreShare
from ser.errors import SerError
from ser.models.checkpoints import check_classes, read_checkpoint
from ser.models.module import EmotionClassifier
from ser.reporting.generalisation import gap_words, matching_test_sets, validation_gap
from ser.reporting.predictions import run_predictions
from ser.reporting.shared_text import shared_text_words
from ser.reporting.tables import markdown_table
from ser.run_layout import LAST_CHECKPOINT, checkpoint_dir, last_checkpoint, remove_temporaries
from ser.training.callbacks import build_callbacks
from ser.training.checkpoint_io import AtomicCheckpointIO
from ser.training.loggers import build_logger, finish_wandb
from ser.training.precision import trainer_precision
from ser.training.run_files import finished_metrics, group_choices, run_record, write_run_files


def run_directory(cfg: DictConfig) -> tuple[Path, str | None]:
    """This job's output folder, and the sweep's name (the W&B group) inside a multirun."""
    if not HydraConfig.initialized():
        return Path(cfg.get("run_dir") or "outputs/run").resolve(), None
    hc = HydraConfig.get()
    group = None
    run_dir = Path(hc.runtime.output_dir).resolve()
    if hc.mode == RunMode.MULTIRUN:
        sweep = Path(hc.sweep.dir)
        parts = sweep.parts[1:] if sweep.parts and sweep.parts[0] == "multirun" else sweep.parts
        group = "_".join(parts) or sweep.name
        older = legacy_job_dir(hc) if cfg.get("resume") else None
        if older is not None and not last_checkpoint(run_dir).is_file():
            print(f"Continuing {older.name}, this job's folder as an older version named it.", flush=True)
            run_dir = older
    return run_dir, group


def legacy_job_dir(hc) -> Path | None:
    """The job's folder as versions before ``fold-1_snr-clean`` named it (``fold=1,snr=clean``),
    when that folder exists: ``resume=true`` on an older sweep continues its jobs there."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    exclude = set(hc.job.config.override_dirname.exclude_keys)
    overrides = OverridesParser.create().parse_overrides(list(hc.overrides.task))
    name = ",".join(sorted(o.input_line for o in overrides if o.key_or_group not in exclude))
    folder = Path(hc.sweep.dir) / name
    try:
        return folder.resolve() if name and folder.is_dir() else None
    except OSError:  # a name too long for the file system: no such folder was ever made
        return None


def check_ddp_launcher(trainer: DictConfig, launcher_target: str) -> None:
    """Refuse DDP inside a joblib worker: Lightning starts the other processes by re-running the
    worker's command line, which is not train.py (the job would die with a parser error)."""
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy or "")
    if "joblib" in launcher_target.lower() and "ddp" in target.lower() and str(trainer.get("devices")) != "1":
        raise SerError("trainer=ddp cannot run under hydra/launcher=parallel: each joblib worker would "
                       "have to start the other DDP processes itself. Sweep DDP jobs one after the "
                       "other with the default launcher (each job uses all trainer.devices), or on "
                       "SLURM with hydra/launcher=slurm and hydra.launcher.tasks_per_node and "
                       "gpus_per_node equal to trainer.devices; or drop trainer=ddp to run jobs in "
                       "parallel on one device each.")


def _resume_checkpoint(cfg: DictConfig, ckpt_dir: Path) -> str | None:
    if cfg.get("ckpt_path"):
        return str(Path(cfg.ckpt_path).expanduser())
    if not cfg.get("resume"):
        return None
    for stale in remove_temporaries(ckpt_dir) if ckpt_dir.is_dir() else []:
        print(f"Removed {stale.name}, a checkpoint that was being written when the run stopped.",
              flush=True)
    last = ckpt_dir / LAST_CHECKPOINT
    return str(last) if last.is_file() else None


def step_budget(trainer: DictConfig) -> DictConfig:
    """The trainer config with validation no rarer than the step budget: a run of 50 steps with
    ``val_check_interval: 100`` would otherwise never validate, and so never pick a checkpoint."""
    trainer = trainer.copy()
    interval, steps = trainer.get("val_check_interval"), int(trainer.get("max_steps") or -1)
    if isinstance(interval, int) and not isinstance(interval, bool) and 0 < steps < interval:
        trainer.val_check_interval = steps
    return trainer


def selected_validation(at: dict | None, score: float | None, monitor: str) -> dict:
    """The selected checkpoint's validation scores (``{"ua"[, "ua_shared_text"]}``) from the
    validation ``at`` its score was reached (None where this process did not see it: a resumed
    run's best may come from before the resume); its ``score`` is its UA where it monitors
    ``val/ua``."""
    found = dict(at or {})
    if monitor == "val/ua" and score is not None:
        found.setdefault("ua", score)
    return found


def train(cfg: DictConfig) -> dict:
    """Fit on the configured fold, test the best checkpoint on every test set, save the results."""
    started = time.time()
    run_dir, group = run_directory(cfg)
    if HydraConfig.initialized():
        check_ddp_launcher(cfg.trainer, str(HydraConfig.get().launcher.get("_target_", "")))
    done = finished_metrics(run_dir) if cfg.get("resume") else None
    if done is not None:
        return done
    if rank_zero_only.rank == 0:  # a cluster job's log then says where its files go
        print(f"Run directory: {run_dir}", flush=True)

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # under DDP (trainer=ddp) the other processes build the same data without printing it again
    datamodule = build(cfg.data, **({} if rank_zero_only.rank == 0 else {"verbose": False}))
    datamodule.setup("fit")
    ckpt_dir = checkpoint_dir(run_dir)
    resume_from = _resume_checkpoint(cfg, ckpt_dir)
    if resume_from:
        check_classes(read_checkpoint(resume_from)["hyper_parameters"]["classes"],
                      datamodule.classes, resume_from)
        print(f"Resuming from {resume_from}", flush=True)
    model = EmotionClassifier(classes=datamodule.classes, model=cfg.model, optim=cfg.optim,
                              features=cfg.features, augment=cfg.get("augment"),
                              trunk_cache=cfg.get("trunk_cache"), choices=group_choices(),
                              calibration=cfg.get("calibration"),
                              run_config=OmegaConf.to_container(cfg, resolve=True))
    trainer_cfg = step_budget(cfg.trainer)
    logger = build_logger(cfg, run_dir, group)
    callbacks = build_callbacks(cfg.get("callbacks"), ckpt_dir, trainer_cfg, has_tracker=bool(logger))
    best, stop = callbacks.best, callbacks.stop
    share = CoreShare()
    trainer: pl.Trainer = build(trainer_cfg, precision=trainer_precision(cfg.trainer),
                                      callbacks=[*callbacks.all, share], logger=logger,
                                      default_root_dir=str(run_dir), plugins=[AtomicCheckpointIO()])
    try:
        if logger:
            from ser.training.previews import log_spectrogram_previews

            log_spectrogram_previews(logger, model, datamodule, int(cfg.logger.get("log_images", 0)))
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        # read now: the passes below load the best checkpoint, which restores the callbacks' state
        stopped_early = bool(stop is not None and trainer.should_stop)
        tested = (Path(best.best_model_path).name if best.best_model_path else
                  f"the final weights, step {trainer.global_step} (no validation ran, so no best checkpoint)")
        # the calibration layer is fitted on the validation part and stored in the tested
        # checkpoint: the best, or (no validation ran) last.ckpt, which holds the final weights
        final = ckpt_dir / LAST_CHECKPOINT
        tested_file = best.best_model_path or (str(final) if final.is_file() else None)
        calibration = fit_calibration(trainer, model, datamodule, tested_file,
                                      (cfg.get("abstain") or {}).get("selective_accuracy"))
        trainer.test(model, datamodule=datamodule, ckpt_path="best" if best.best_model_path else None,
                     verbose=False)
        metrics = model.test_results
        if not trainer.is_global_zero:  # under DDP every process has the metrics; one writes them
            return metrics
        record = run_record(cfg, datamodule, time.time() - started)
        record["memory_per_epoch"] = callbacks.memory.epochs if callbacks.memory else []
        # what the run trained for and which state was tested: equal-step comparisons check these
        score = None if best.best_model_score is None else float(best.best_model_score)
        at = selected_validation(model.validation_at(score, best.monitor), score, best.monitor)
        record["training"] = {"steps": int(trainer.global_step), "epochs": int(trainer.current_epoch),
                              "stopped_early": stopped_early,
                              "selected": {"monitor": best.monitor,
                                           "score": score,
                                           "checkpoint": Path(best.best_model_path).name or None,
                                           # its validation UA, whatever chose it, and its UA on the
                                           # texts several classes speak (ser/data/texts.py)
                                           "ua": at.get("ua"), "ua_shared_text": at.get("ua_shared_text")},
                              "tested": tested,
                              "threads": sorted(share.thread_counts),   # intra-op threads it trained with
                              "trunk_cache": model.trunk_cache_report}
        record["generalisation"] = validation_gap(
            record["training"]["selected"]["ua"], metrics, getattr(datamodule.plan, "validation", None),
            matching_test_sets(cfg.snr, cfg.data.get("all_snrs", (15, 20, 40))))
        if calibration is not None:
            record["calibration"] = calibration
        if shares := model.layer_shares():  # speech encoders: each layer's share in the head's sum
            record["training"]["layer_weights"] = shares
        write_run_files(run_dir, datamodule, OmegaConf.to_yaml(cfg, resolve=True), record, metrics,
                        predictions=run_predictions(datamodule, model.test_items))
        if logger:
            from ser.training.previews import log_test_tables

            log_test_tables(logger, metrics, datamodule.classes)
    finally:
        finish_wandb()
    print(markdown_table(metrics, title=f"{cfg.run_name}: test sets ({run_dir}); weights tested: {tested}"),
          flush=True)
    print(gap_words(record["generalisation"]), flush=True)
    for said in (shared_text_words(metrics), calibration_words(calibration)):
        if said:
            print(said, flush=True)
    return metrics
