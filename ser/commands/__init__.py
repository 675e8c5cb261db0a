"""Every command, one module each; the installed ones are ``[project.scripts]`` in pyproject.toml.

``ser-train`` and ``ser-evaluate`` are train.py and evaluate.py (three lines each, calling
:mod:`ser.commands.train` and :mod:`ser.commands.evaluate`), taking Hydra's ``key=value``
overrides, which :mod:`ser.commands.overrides` checks first so that a mistake there is one
paragraph with exit status 2 too. Every other command (``predict``, ``listen``, ``serve``, ``export``, ``bench``,
``figure2``, ``speech_census``, ``bench_speech``) declares its keys once in a
:class:`ser.cli.Spec` read by :func:`ser.cli.parse`, so ``--help`` lists them and a mistake is one
paragraph with exit status 2; ``python -m ser.predict`` and the like run the same ``main``.
:mod:`ser.commands.keys` holds the keys several of them share. Each module parses its arguments
and calls the work, which lives below (ser.inference, ser.serve, ser.export, ser.bench,
ser.figure2, ser.reporting).

A Hydra app finds its configs relative to the file that declares it; an installed command has
no such file beside conf/, so :func:`hydra_command` looks for conf/ where
:func:`ser.configs.conf_dir` does (``$SER_CONF``, ``./conf``, the source checkout) when the
command starts, not when the module is imported.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from ser.cli import quote_paths, report_errors
from ser.cores import note_user_threads


def hydra_command(task: Callable[[Any], Any], config_name: str, path_keys: tuple[str, ...]
                  ) -> Callable[[], None]:
    """A console-script function running ``task(cfg)`` as a Hydra app over ``config_name``;
    the values of ``path_keys`` on the command line are quoted for Hydra's grammar first."""
    @report_errors
    def command() -> None:
        import hydra

        from ser.configs import conf_dir

        from ser.commands.overrides import check_overrides

        sys.argv = quote_paths(sys.argv, path_keys)
        check_overrides(config_name, sys.argv[1:], f"python {config_name}.py")
        note_user_threads()
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(task)()

    command.__doc__ = task.__doc__
    return command
