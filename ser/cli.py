"""What entry points share: set up the process, print a SerError as one paragraph and exit
non-zero, take paths as they paste, and read ``key=value`` arguments (the one command style:
Hydra's overrides for train and evaluate, :func:`key_values` for the small tools)."""

from __future__ import annotations

import argparse
import functools
import sys
import textwrap
import warnings
from typing import Callable, TypeVar

from ser.errors import SerError, ser_error_in

T = TypeVar("T")
EXIT_USER_ERROR = 2
# Lightning's warnings about what ser.models.module.EmotionClassifier does on purpose.
EXPECTED_WARNINGS = (
    # images are made in its hook on purpose (a checkpoint must render its own inputs)
    ".*overridden `on_after_batch_transfer` in `LightningModule`.*",
    # frozen layers are in eval mode on purpose (TransferNet.train, SpeechEncoderNet.train)
    ".*module\\(s\\) in eval mode at the start of training.*",
)


def prepare_process() -> None:
    """What a command sets for its whole process, first thing, and importing ``ser`` does not:
    the C allocator keeps freed blocks for the next step (:mod:`ser.allocator`, before torch
    allocates) and Lightning's warnings about what the LightningModule does on purpose are
    silenced (:data:`EXPECTED_WARNINGS`)."""
    from ser.allocator import configure_allocator

    configure_allocator()
    for message in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


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


def key_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``argv`` in the ``key=value`` style every ser command takes, as ``parser`` reads it.

    ``trunk_chunk=0`` -> ``--trunk-chunk 0``; a switch takes true/false (``quick=true`` ->
    ``--quick``); a positional argument may be named (``input=speech.wav``). An item whose key
    is none of the parser's stays as it is, so the older ``--flag value`` form and plain
    positional paths (which may hold ``=``) keep working."""
    flags, positional = {}, {}
    for action in parser._actions:  # argparse keeps no public list of its arguments
        if action.option_strings:
            flags[action.dest] = action
        elif action.dest != argparse.SUPPRESS:
            positional[action.dest] = action
    out: list[str] = []
    named: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        dest = key.replace("-", "_")
        if not sep or item.startswith("-") or (dest not in flags and dest not in positional):
            out.append(item)
        elif dest in positional:
            named[dest] = value
        elif flags[dest].nargs == 0:  # a switch (store_true)
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                parser.error(f"{key}={value}: give {key}=true or {key}=false")
            if value.lower() in ("true", "1", "yes"):
                out.append(flags[dest].option_strings[-1])
        else:
            out += [flags[dest].option_strings[-1], value]
    # named positionals go first, in the parser's order, before any given without a name
    return [named[d] for d in positional if d in named] + out


def key_value_words(argv: list[str], defaults: dict, command: str, hint: str,
                    nulls: tuple[str, ...] = ("", "null", "none")) -> dict:
    """``key=value`` words of the light commands (ser.predict, ser.listen, ser.serve) ->
    ``defaults`` updated; a value in ``nulls`` (case-insensitive) is None. A word that is not
    ``key=value`` with a known key is one SerError naming the keys, then ``hint``."""
    args = dict(defaults)
    for word in argv:
        key, sep, value = word.partition("=")
        if not sep or key not in defaults:
            raise SerError(f"Unknown argument {word!r}: {command} takes key=value words among "
                           f"{', '.join(defaults)}{hint}")
        args[key] = None if value.lower() in nulls else value
    return args

