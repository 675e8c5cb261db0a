"""What entry points share: print a SerError as one paragraph and exit non-zero."""

from __future__ import annotations

import functools
import sys
import textwrap
from typing import Callable, TypeVar

from ser.errors import ser_error_in

T = TypeVar("T")
EXIT_USER_ERROR = 2


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

