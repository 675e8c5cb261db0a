"""Evaluate a checkpoint, summarise a sweep, or classify recordings:
`python evaluate.py ckpt=PATH | sweep=DIR | ckpt=PATH audio=FILE|DIR [output=json]`.

See conf/evaluate.yaml for the keys; README.md ("Evaluate") for examples.
"""

import hydra
from omegaconf import DictConfig

from ser.cli import report_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    from ser.evaluation.evaluate_command import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
