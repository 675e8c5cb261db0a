"""Evaluate a checkpoint, summarise a sweep, or classify recordings:
`python evaluate.py ckpt=PATH | sweep=DIR | ckpt=PATH audio=FILE|DIR [output=json]`
(installed: `ser-evaluate`, the same command).

See conf/evaluate.yaml for the keys; README.md ("Evaluate") for examples.
"""

import sys

import hydra
from omegaconf import DictConfig

from ser.cli import quote_paths
from ser.cores import note_user_threads
from ser.commands.evaluate import PATH_KEYS, evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    sys.argv = quote_paths(sys.argv, PATH_KEYS)  # job folders of older sweeps hold = and ,
    note_user_threads()  # parallel sweep workers tell the launcher's thread limit from the user's
    main()
