"""Evaluate a checkpoint, summarise a sweep, or classify recordings:
`python evaluate.py ckpt=PATH | sweep=DIR | ckpt=PATH audio=FILE|DIR [output=json]`.

See conf/evaluate.yaml for the keys; README.md ("Evaluate") for examples.
"""

import sys

import hydra
from omegaconf import DictConfig

from ser.cli import prepare_process, quote_paths, report_errors

PATH_KEYS = ("ckpt", "sweep", "audio", "out_dir")


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    prepare_process()
    from ser.evaluation.evaluate_command import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    sys.argv = quote_paths(sys.argv, PATH_KEYS)  # job folders of older sweeps hold = and ,
    main()
