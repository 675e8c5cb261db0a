"""Experiment trackers: W&B (grouped per sweep, offline without credentials), CSV or none."""

from __future__ import annotations

import logging
import netrc
import os
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ser.errors import SerError

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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def build_logger(cfg: DictConfig, run_dir: Path, group: str | None):
    kind = cfg.logger.kind
    if kind == "none":
        return False
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if kind == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        mode = wandb_mode(cfg.logger.mode)
        if mode == "offline":
            print("W&B: no credentials found, logging offline into the run directory; upload "
                  f"later with `wandb sync {run_dir}/wandb/offline-run-*`.", flush=True)
        return WandbLogger(project=cfg.logger.project, entity=cfg.logger.get("entity"),
                           name=cfg.run_name, group=group, save_dir=str(run_dir),
                           id=wandb_run_id(run_dir), resume="allow", mode=mode,
                           tags=list(cfg.get("tags") or []),
                           config=OmegaConf.to_container(cfg, resolve=True))
    raise SerError(f"Unknown logger kind {kind!r}; use logger=wandb, logger=csv or logger=none.")


def finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun starts its own."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as exc:  # a tracker problem must not lose a finished run's results
        log.warning("W&B finish failed: %s", exc)
