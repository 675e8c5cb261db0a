"""The installed commands (``[project.scripts]`` in pyproject.toml): ``ser-train`` and
``ser-evaluate`` are train.py and evaluate.py, taking the same Hydra ``key=value`` overrides.

A Hydra app finds its configs relative to the file that declares it; an installed command has
no such file beside conf/, so :func:`hydra_command` looks for conf/ where
:func:`ser.configs.conf_dir` does (``$SER_CONF``, ``./conf``, the source checkout) when the
command starts, not when the module is imported.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from ser.cli import quote_paths, report_errors


def hydra_command(task: Callable[[Any], Any], config_name: str, path_keys: tuple[str, ...]
                  ) -> Callable[[], None]:
    """A console-script function running ``task(cfg)`` as a Hydra app over ``config_name``;
    the values of ``path_keys`` on the command line are quoted for Hydra's grammar first."""
    @report_errors
    def command() -> None:
        import hydra

        from ser.configs import conf_dir

        sys.argv = quote_paths(sys.argv, path_keys)
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(task)()

    command.__doc__ = task.__doc__
    return command
