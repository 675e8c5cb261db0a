"""What entry points share: set up the process, print a SerError as one paragraph and exit
non-zero, and take paths as they paste."""

from __future__ import annotations

import functools
import sys
import textwrap
from typing import Callable, TypeVar

from ser.errors import ser_error_in

T = TypeVar("T")
EXIT_USER_ERROR = 2


def prepare_process() -> None:
    """What a command sets for its whole process, first thing, and importing ``ser`` does not:
    the C allocator keeps freed blocks for the next step (:mod:`ser.allocator`, before torch
    allocates) and Lightning's warnings about what the LightningModule does on purpose are
    silenced (:data:`ser.models.module.EXPECTED_WARNINGS`)."""
    from ser.allocator import configure_allocator

    configure_allocator()
    from ser.models.module import ignore_expected_warnings

    ignore_expected_warnings()


def report_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a SerError into ``error: <paragraph>`` on stderr and exit code 2, no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as raised:  # Hydra's instantiate wraps our errors: find ours in the chain
            exc = ser_error_in(raised)
            if exc is None:
                raise
            print("\n" + textwrap.fill(f"error: {exc}", width=100, break_on_hyphens=False,
                                        break_long_words=False), file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
    return wrapper



# Characters Hydra's override grammar gives a meaning to: a path holding one dies in its parser
# ("mismatched input '=' expecting <EOF>"). Sweep job folders of older versions were named
# ``fold=1,snr=clean``; today's are ``fold-1_snr-clean``, which need no quoting.
_GRAMMAR = set("=,[]{}()' \"\\$:*?")


def quote_paths(argv: list[str], keys: tuple[str, ...]) -> list[str]:
    """``argv`` with the values of the path-valued ``keys`` quoted for Hydra where needed, so
    ``ckpt=multirun/x/fold=1,snr=clean`` is read as that path. Quoted values stay as they are."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in keys and value and value[0] not in "'\"" and _GRAMMAR & set(value):
            quote = "'" if "'" not in value else '"'
            arg = f"{key}={quote}{value}{quote}"
        out.append(arg)
    return out
