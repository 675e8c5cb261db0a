"""What every layer needs from the configs: plain values of config nodes, objects built from
their ``_target_`` with our errors intact, and the conf/ folder.

``conf/`` sits beside train.py in the project, not inside the ``ser`` package, so code that
composes configs outside a Hydra app (rebuilding a checkpoint's training config) looks for it
where a user runs from, instead of relative to the installed source files.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from pathlib import Path
from typing import Any, Mapping

from ser.errors import SerError

CONF_ENV = "SER_CONF"


def plain(value: Any) -> Any:
    """A config node as plain, resolved Python (dicts, lists); anything else as it is."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


# Keys of a node that steer the builder rather than reach the built object (Hydra's names).
BUILDER_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def locate(target: str) -> Any:
    """The object a dotted ``_target_`` names (``torch.optim.AdamW``, ``ser.data.splits.loso_split``):
    the longest importable module prefix, then attributes. A SerError when nothing answers."""
    parts = str(target).split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name and not ".".join(parts[:cut]).startswith(exc.name):
                raise  # the module exists but one of its own imports is missing: say that
            continue
        try:
            for attr in parts[cut:]:
                found = getattr(found, attr)
        except AttributeError:
            break
        return found
    raise SerError(f"`_target_: {target}` cannot be found: no module or attribute of that name. "
                   "Name a class or function as module.name, e.g. ser.audio.noise_sources.folder "
                   "(the files in conf/ show one per group).")


def build(node: Any, /, **given: Any) -> Any:
    """The object a config node describes: ``node["_target_"]`` called with the node's other keys
    and ``given``. The one way the project turns configs into objects, with or without Hydra.

    The node may be an OmegaConf config (resolved first) or a plain mapping. Nested nodes with a
    ``_target_`` are built first unless the node says ``_recursive_: false`` (the data module
    builds its parts itself); every other nested value arrives as plain dicts and lists.
    ``_partial_: true`` (in the node or ``given``) returns a ``functools.partial`` instead of
    calling. ``given`` is passed as it is, never merged into the config, so arrays and whole run
    configs (which hold ``_target_`` keys of their own) arrive untouched. Keys a target does not
    take, and a node that names no ``_target_``, are SerErrors that name the target and keys.
    """
    settings = plain(node)
    if not isinstance(settings, Mapping):
        raise SerError(f"Expected a config node with a `_target_`, got {settings!r}.")
    return _call(dict(settings), given)


def _built(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _call(dict(value), {}) if value.get("_target_") else {k: _built(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_built(v) for v in value]
    return value


def _call(settings: dict[str, Any], given: Mapping[str, Any]) -> Any:
    given = dict(given)
    target = settings.get("_target_")
    if not target:
        label = settings.get("name", settings.get("kind"))
        raise SerError(f"A config node{f' ({label})' if label else ''} names no `_target_`, so nothing "
                       f"says what to build from it (keys: {', '.join(sorted(map(str, settings))) or 'none'}). "
                       "Each file in conf/<group>/ names its builder as `_target_: module.name`.")
    partial = bool(given.pop("_partial_", settings.get("_partial_", False)))
    recursive = bool(settings.get("_recursive_", True))
    args = list(settings.get("_args_", ()))
    kwargs = {k: (_built(v) if recursive else v) for k, v in settings.items() if k not in BUILDER_KEYS}
    kwargs.update(given)
    function = locate(target)
    if partial:
        return functools.partial(function, *args, **kwargs)
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:
        raise SerError(f"`_target_: {target}` cannot take these settings ({exc}); given "
                       f"{', '.join(sorted(kwargs)) or 'nothing'}. Check the keys of its config "
                       "file in conf/ and the overrides against its signature.") from None
    except ValueError:  # no signature to check (some builtins): the call says what is wrong
        pass
    return function(*args, **kwargs)


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
