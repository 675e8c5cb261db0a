"""``ser-evaluate`` / ``python evaluate.py ckpt=PATH | sweep=DIR | ckpt=PATH audio=FILE|DIR``:
evaluate a checkpoint, summarise a sweep, or classify recordings (conf/evaluate.yaml)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from ser.cli import prepare_process, report_errors
from ser.commands import hydra_command
from ser.cores import release

PATH_KEYS = ("ckpt", "sweep", "audio", "out_dir")


@report_errors
def evaluate(cfg: DictConfig) -> None:
    """Run the mode ``cfg`` asks for (see conf/evaluate.yaml)."""
    print(prepare_process(cfg.get("threads", "auto")), file=sys.stderr, flush=True)
    from ser.evaluation.evaluate_command import evaluate as run

    try:
        run(cfg)
    finally:
        release()   # a sweep's worker that waits for its next job holds no cores meanwhile


main = hydra_command(evaluate, "evaluate", PATH_KEYS)
