"""Experiment trackers: W&B (grouped per sweep, offline without credentials), CSV or none.

conf/logger/<name>.yaml names its tracker by ``_target_``: a function called with the run's
``run_dir``, ``run_name``, ``group`` (the sweep, or None), ``tags`` and resolved ``config``, plus
the file's own keys but ``log_images``; it returns a Lightning logger, or False for
none. A new tracker is such a function and a YAML file.
"""

from __future__ import annotations

import logging
import netrc
import os
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ser.atomic import write_text_atomic
from ser.configs import build

log = logging.getLogger(__name__)
WANDB_ID_FILE = "wandb_id.txt"


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(requested: str) -> str:
    """``auto`` -> online with credentials, else offline (never waits on the network)."""
    env = os.environ.get("WANDB_MODE")
    if requested == "auto":
        if env in ("offline", "disabled", "online"):
            return env
        return "online" if has_wandb_credentials() else "offline"
    return requested


def wandb_run_id(run_dir: Path) -> str:
    """A run directory keeps its W&B id, so a resumed job continues the same W&B run."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    write_text_atomic(path, run_id + "\n")
    return run_id


NOT_TRACKER_KEYS = ("log_images",)


def build_logger(cfg: DictConfig, run_dir: Path, group: str | None):
    """The tracker ``cfg.logger._target_`` names, for this run (False: none)."""
    settings = {k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items()
                if k not in NOT_TRACKER_KEYS}
    return build(settings, run_dir=Path(run_dir), run_name=str(cfg.run_name), group=group,
                 tags=list(cfg.get("tags") or []), config=OmegaConf.to_container(cfg, resolve=True))


def no_logger(**run) -> bool:
    return False


def csv_logger(run_dir: Path, **run):
    from pytorch_lightning.loggers import CSVLogger

    return CSVLogger(save_dir=str(run_dir), name="csv", version="")


def wandb_logger(run_dir: Path, run_name: str, group: str | None, tags: list[str], config: dict,
                 project: str = "ser", entity: str | None = None, mode: str = "auto"):
    from pytorch_lightning.loggers import WandbLogger

    mode = wandb_mode(mode)
    if mode == "offline":
        print("W&B: no credentials found, logging offline into the run directory; upload "
              f"later with `wandb sync {run_dir}/wandb/offline-run-*`.", flush=True)
    return WandbLogger(project=project, entity=entity, name=run_name, group=group,
                       save_dir=str(run_dir), id=wandb_run_id(run_dir), resume="allow", mode=mode,
                       tags=tags, config=config)


def finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun starts its own."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as exc:  # a tracker problem must not lose a finished run's results
        log.warning("W&B finish failed: %s", exc)
