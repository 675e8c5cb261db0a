"""What every layer needs from the configs: plain values of config nodes, and the conf/ folder.

``conf/`` sits beside train.py in the project, not inside the ``ser`` package, so code that
composes configs outside a Hydra app (rebuilding a checkpoint's training config) looks for it
where a user runs from, instead of relative to the installed source files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ser.errors import SerError

CONF_ENV = "SER_CONF"


def plain(value: Any) -> Any:
    """A config node as plain, resolved Python (dicts, lists); anything else as it is."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def conf_dir() -> Path:
    """The folder holding train.yaml and the config groups: ``$SER_CONF``, else ``./conf``,
    else the source checkout's ``conf/`` (an editable install)."""
    candidates = ([Path(os.environ[CONF_ENV]).expanduser()] if os.environ.get(CONF_ENV) else []) + [
        Path.cwd() / "conf", Path(__file__).resolve().parents[1] / "conf"]
    for folder in candidates:
        if (folder / "train.yaml").is_file():
            return folder.resolve()
    raise SerError(f"ser's configs were not found (looked for train.yaml in "
                   f"{', '.join(str(c) for c in candidates)}). Run from the project folder that holds "
                   f"conf/ and train.py, or set {CONF_ENV}=/path/to/conf.")
