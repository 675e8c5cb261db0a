"""Train one model per configuration: `python train.py [overrides]`, `python train.py -m ...` for sweeps.

`model=mfcc_svm` fits the conventional baseline (an SVM on MFCC statistics) on the same data.
See conf/train.yaml for the groups; README.md for examples.
"""

import sys

import hydra
from omegaconf import DictConfig

from ser.cli import prepare_process, quote_paths, report_errors
from ser.config_upgrade import is_baseline_config

PATH_KEYS = ("hydra.run.dir", "ckpt_path")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    prepare_process()
    if is_baseline_config(cfg.model):  # model=mfcc_svm, model=opensmile_svm: an SVM, no network
        from ser.baseline.run import train_baseline as train
    else:
        from ser.training.runner import train

    metrics = train(cfg)
    return float(metrics.get("clean", {}).get("weighted_f1", float("nan")))


if __name__ == "__main__":
    sys.argv = quote_paths(sys.argv, PATH_KEYS)  # e.g. resuming a job folder of an older sweep
    main()
