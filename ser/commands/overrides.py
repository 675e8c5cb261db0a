"""Checking a Hydra command's ``key=value`` overrides before Hydra runs, so a mistake in
``train.py`` or ``evaluate.py`` is what it is in every other command: one paragraph on stderr
that says what was expected and where, and exit status 2 (Hydra itself prints a few lines of
its own and exits 1, and only once the job has started).

The check composes the config once with Hydra's own parser and composer (a sweep's
``fold=0,1,2`` is checked with its first value), so it accepts exactly what Hydra accepts; it
costs a few tenths of a second, and nothing is built or written.
"""

from __future__ import annotations

from typing import Any, Sequence

from ser.errors import SerError


# Hydra's flags that take the next argument as their value, and those after which Hydra itself
# answers (help, information, another config) so the check steps aside.
TAKES_VALUE = ("--cfg", "-c", "--package", "-p", "--experimental-rerun", "--config-path", "-cp",
               "--config-dir", "-cd", "--config-name", "-cn")
LEAVE_TO_HYDRA = ("--help", "-h", "--hydra-help", "--info", "-i", "--config-name", "-cn",
                  "--config-dir", "-cd", "--config-path", "-cp", "--experimental-rerun",
                  "--shell-completion", "-sc")


def _one_line(text: str) -> str:
    return " ".join(str(text).replace("\n", " ").split())


def _single(override: Any) -> str:
    """A sweep override (``fold=0,1,2``) as its first value; any other as written."""
    if not override.is_sweep_override():
        return override.input_line
    first = next(iter(override.sweep_string_iterator()), "")
    return f"{override.get_key_element()}={first}"


def _node_keys(config_name: str, key: str, overrides: list[str]) -> tuple[str, list[str]] | None:
    """(the nearest existing parent of dotted ``key``, its keys) in the config composed from
    ``overrides``; None when even the top level cannot be composed."""
    from hydra import compose
    from omegaconf import DictConfig, OmegaConf

    try:
        cfg = compose(config_name, overrides=overrides)
    except Exception:
        return None
    parts = key.lstrip("+~").split(".")
    node, where = cfg, []
    for part in parts[:-1]:
        child = OmegaConf.select(node, part) if isinstance(node, DictConfig) else None
        if not isinstance(child, DictConfig):
            break
        node, where = child, where + [part]
    return ".".join(where), sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def check_overrides(config_name: str, argv: Sequence[str], command: str) -> None:
    """SerError of one paragraph where ``argv`` (the command's arguments, flags included) holds an
    override Hydra would refuse: bad grammar, a key the config lacks, a group option that
    does not exist. ``command`` names the command in the message (``python train.py``)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ser.configs import conf_dir

    given, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in TAKES_VALUE:
            skip = True
        elif not arg.startswith("-"):
            given.append(arg)
    if any(a.split("=")[0] in LEAVE_TO_HYDRA for a in argv):
        return
    hint = (f"`{command} --help` lists its groups and keys; `+key=value` adds a key the config "
            "does not have.")
    try:
        parsed = OverridesParser.create().parse_overrides(given)
    except Exception as exc:
        raise SerError(f"{command}: cannot read the overrides {' '.join(given)!r}: "
                       f"{_one_line(exc)}. Each is key=value (a path holding = , [ ] or spaces in "
                       f"quotes: key='a=b'); {hint}") from None
    single = [_single(o) for o in parsed]
    if GlobalHydra.instance().is_initialized():  # a caller's own Hydra session: leave it alone
        return
    from hydra import compose

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        try:
            compose(config_name, overrides=single)   # one composition when all is well
        except Exception:
            for index, override in enumerate(single):   # else the first override refused
                try:
                    compose(config_name, overrides=single[: index + 1])
                except Exception as exc:
                    raise SerError(_message(config_name, override, single[:index], exc, command, hint)) from None
            raise


def _message(config_name: str, override: str, before: list[str], exc: Exception, command: str,
             hint: str) -> str:
    """The paragraph for ``override``, the first one the config refuses."""
    key = override.split("=", 1)[0]
    text = _one_line(exc)
    if "not in struct" in text or "Could not override" in text or "Could not append" in text:
        found = _node_keys(config_name, key, before)
        if found is not None:
            parent, keys = found
            where = f"`{parent}`" if parent else "the top level"
            return (f"{command} {override}: {where} has no key `{key.lstrip('+~').split('.')[-1]}`; "
                    f"it has {', '.join(keys) or 'none'}. {hint}")
    if "Could not find" in text or "Available options" in text:
        text = text.split(" Config search path")[0].replace("Could not find", "there is no")
        return f"{command} {override}: {text}. {hint}"
    return f"{command} {override}: {text}. {hint}"
