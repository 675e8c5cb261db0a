"""Train one model per configuration: `python train.py [overrides]`, `python train.py -m ...` for sweeps.

See conf/train.yaml for the groups; README.md for examples.
"""

import hydra
from omegaconf import DictConfig

from ser.cli import report_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    from ser.training.runner import train

    metrics = train(cfg)
    return float(metrics.get("clean", {}).get("weighted_f1", float("nan")))


if __name__ == "__main__":
    main()
