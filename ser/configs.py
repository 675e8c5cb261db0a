"""What every layer needs from the configs: plain values of config nodes, objects built from
their ``_target_`` with our errors intact, and the conf/ folder.

``conf/`` sits beside train.py in the project, not inside the ``ser`` package, so code that
composes configs outside a Hydra app (rebuilding a checkpoint's training config) looks for it
where a user runs from, instead of relative to the installed source files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ser.errors import SerError, ser_error_in

CONF_ENV = "SER_CONF"


def plain(value: Any) -> Any:
    """A config node as plain, resolved Python (dicts, lists); anything else as it is."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def build(node: Any, **given: Any) -> Any:
    """``hydra.utils.instantiate(node, **given)``, raising the SerError of the code it called
    as it is: Hydra wraps it in an InstantiationException whose message holds a traceback."""
    from hydra.utils import instantiate

    try:
        return instantiate(node, **given)
    except SerError:
        raise
    except Exception as exc:
        cause = ser_error_in(exc)
        if cause is not None:
            raise cause from None
        raise


def call_target(settings: Mapping[str, Any], **given: Any) -> Any:
    """Call the function ``settings["_target_"]`` names with the other (plain) settings and
    ``given`` as keyword arguments. Unlike ``instantiate`` nothing given is merged into a
    config first, so arrays and whole run configs (which hold ``_target_`` keys of their own)
    arrive as they are."""
    from hydra.utils import get_method

    settings = dict(settings)
    target = settings.pop("_target_")
    try:
        function = get_method(target)
    except Exception as exc:
        raise SerError(f"`_target_: {target}` cannot be found ({str(exc).splitlines()[0]}); name a "
                       "function as module.function, e.g. ser.audio.noise_sources.folder.") from None
    return function(**settings, **given)


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
