"""Train one model per configuration: `python train.py [overrides]`, `python train.py -m ...` for sweeps
(installed: `ser-train`, the same command).

`model=mfcc_svm` fits the conventional baseline (an SVM on MFCC statistics) on the same data.
See conf/train.yaml for the groups; README.md for examples.
"""

import sys

import hydra
from omegaconf import DictConfig

from ser.cli import quote_paths
from ser.cores import note_user_threads
from ser.commands.train import PATH_KEYS, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    sys.argv = quote_paths(sys.argv, PATH_KEYS)  # e.g. resuming a job folder of an older sweep
    note_user_threads()  # parallel sweep workers tell the launcher's thread limit from the user's
    main()
