"""``ser-train`` / ``python train.py [overrides]``: train one model per configuration
(``-m`` for sweeps). A ``model`` whose class is a baseline (``model=mfcc_svm``,
``model=opensmile_svm``) is fitted without a network on the same data."""

from __future__ import annotations

from omegaconf import DictConfig

from ser.cli import prepare_process, report_errors
from ser.commands import hydra_command
from ser.config_upgrade import is_baseline_config
from ser.cores import release

PATH_KEYS = ("hydra.run.dir", "ckpt_path")


@report_errors
def train(cfg: DictConfig) -> float:
    """Train (or fit the baseline) on ``cfg``; the clean test set's weighted F1, for sweepers."""
    print(prepare_process(cfg.get("threads", "auto")), flush=True)
    if is_baseline_config(cfg.model):
        from ser.baseline.run import train_baseline as run
    else:
        from ser.training.runner import train as run

    try:
        metrics = run(cfg)
    finally:
        release()   # a sweep's worker that waits for its next job holds no cores meanwhile
    return float(metrics.get("clean", {}).get("weighted_f1", float("nan")))


main = hydra_command(train, "train", PATH_KEYS)
