"""What entry points share: set up the process, print a SerError as one paragraph and exit
with status 2, take paths as they paste, and read ``key=value`` arguments. There are two command
styles: Hydra's overrides for train and evaluate, and :func:`parse` over a command's
:class:`Spec` for every other command (``ser/commands/``)."""

from __future__ import annotations

import functools
import math
import sys
import textwrap
import warnings
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

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


def prepare_process(threads: int | str | None = "auto") -> str:
    """What a command sets for its whole process, first thing, and importing ``ser`` does not:
    the C allocator keeps freed blocks for the next step (:mod:`ser.allocator`, before torch
    allocates), torch's intra-op threads are this process's share of the cores
    (:mod:`ser.cores`; ``threads``: a number, or ``auto``), and Lightning's warnings about what
    the LightningModule does on purpose are silenced (:data:`EXPECTED_WARNINGS`). Returns the
    line saying which threads it chose and why."""
    from ser.allocator import configure_allocator
    from ser.cores import apply_threads

    configure_allocator()
    chosen = apply_threads(threads)
    for message in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    return chosen


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


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a key that must be given
NULLS = ("none", "null")


@dataclass(frozen=True)
class Key:
    """One ``name=value`` a command takes. ``parse`` reads the text (a ValueError or SerError
    when it cannot; its ``expected`` attribute says what it takes); ``default`` stands when the
    key is not given or given empty (:data:`REQUIRED`: it must be given); ``help`` is its line
    in ``--help``; a ``positional`` key may also come as a bare word, in the keys' order."""
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    positional: bool = False


@dataclass(frozen=True)
class Spec:
    """A command's one-line purpose and every key it takes, each declared once."""
    purpose: str
    keys: tuple[Key, ...]


def expects(text: str) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Mark a parse function with what it expects, for errors and ``--help``."""
    def mark(fn):
        fn.expected = text
        return fn
    return mark


def number(kind: type = float, least: float | None = None, most: float | None = None,
           above: float | None = None, unit: str = "") -> Callable[[str], Any]:
    """Parse a finite ``kind`` (int or float) within the bounds; nan, inf and text are refused."""
    what = "an integer" if kind is int else "a finite number"
    if least is not None and most is not None:
        what += f" from {least:g} to {most:g}"
    elif least is not None:
        what += f" >= {least:g}"
    elif above is not None:
        what += f" > {above:g}"

    @expects(what + (f" ({unit})" if unit else ""))
    def read(text: str):
        value = kind(text)
        if (not math.isfinite(value) or (least is not None and value < least)
                or (most is not None and value > most) or (above is not None and value <= above)):
            raise ValueError(text)
        return value
    return read


def choice(*options: str) -> Callable[[str], str]:
    """Parse one of ``options`` (case-insensitive)."""
    @expects(f"one of {', '.join(options)}")
    def read(text: str) -> str:
        if text.lower() not in options:
            raise ValueError(text)
        return text.lower()
    return read


@expects("true or false")
def switch(text: str) -> bool:
    """Parse true/false (also 1/0, yes/no); ``--name`` alone is ``name=true``."""
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(text)
    return text.lower() in ("true", "1", "yes")


def optional(read: Callable[[str], T]) -> Callable[[str], T | None]:
    """``read``, or None for ``none``/``null``."""
    def maybe(text: str):
        return None if text.lower() in NULLS else read(text)
    if hasattr(read, "expected"):
        maybe.expected = f"{read.expected} or none"
    return maybe


def _shown(value: Any) -> str:
    if value is REQUIRED or value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def help_text(spec: Spec, command: str) -> str:
    """What ``--help`` prints: the purpose, the usage and one line per key."""
    keys = spec.keys
    required = " ".join(f"{k.name}=..." for k in keys if k.default is REQUIRED)
    width = max(len(f"{k.name}={_shown(k.default)}") for k in keys) + 2
    lines = [f"python -m {command}: {spec.purpose}", "",
             f"usage: python -m {command} {required + ' ' if required else ''}[key=value ...]", ""]
    for k in keys:
        expected = getattr(k.parse, "expected", "")
        note = " (required)" if k.default is REQUIRED else ""
        lines.append(f"  {f'{k.name}={_shown(k.default)}':<{width}}{k.help}{note}"
                     + (f"; {expected}" if expected else ""))
    positional = [k.name for k in keys if k.positional]
    lines += ["", "Each argument is key=value; key= alone gives the default. --key value, "
              "--key=value and --key (for true/false keys) are read as key=value"
              + (f", and bare words as {', then '.join(positional)}" if positional else "") + "."]
    return "\n".join(lines)


def parse(argv: list[str], spec: Spec, command: str) -> dict[str, Any]:
    """``argv`` (``key=value`` words) -> every key of ``spec`` with its value, defaults filled.

    ``--help``/``-h`` prints :func:`help_text` and exits 0. An unknown key, a value ``parse``
    refuses or a missing required key is a SerError of one paragraph naming the key, what it
    takes and ``--help`` (the command's :func:`report_errors` exits 2 with it)."""
    argv = list(argv)
    if "--help" in argv or "-h" in argv:
        print(help_text(spec, command), flush=True)
        raise SystemExit(0)
    keys = {k.name: k for k in spec.keys}
    hint = f"python -m {command} --help lists its keys."

    def unknown(word: str) -> SerError:
        return SerError(f"Unknown argument {word!r}: {command} takes key=value words among "
                        f"{', '.join(keys)}. {hint}")

    def read(key: Key, text: str) -> Any:
        try:
            return key.parse(text)
        except (ValueError, SerError) as exc:
            detail = f" ({exc})" if isinstance(exc, SerError) else ""
            expected = getattr(key.parse, "expected", "another value")
            raise SerError(f"{key.name}={text!r}: {key.name}= takes {expected}{detail}. {hint}") from None

    values: dict[str, Any] = {}
    bare: list[str] = []
    words = iter(argv)
    for word in words:
        if word.startswith("--") and len(word) > 2:  # --key value, --key=value, --switch
            name, sep, text = word[2:].partition("=")
            key = keys.get(name.replace("-", "_"))
            if key is None:
                raise unknown(word)
            if not sep:
                text = "true" if key.parse is switch else next(words, None)
                if text is None or text.startswith("--"):
                    raise SerError(f"{word} needs a value ({key.name}=VALUE). {hint}")
            word = f"{key.name}={text}"
        name, sep, text = word.partition("=")
        if not sep and not word.startswith("-"):
            bare.append(word)
            continue
        key = keys.get(name.replace("-", "_")) if sep else None
        if key is None:
            raise unknown(word)
        if text == "":
            values.pop(key.name, None)  # key= alone: the default
        else:
            values[key.name] = read(key, text)
    free = [k for k in spec.keys if k.positional and k.name not in values]
    for word in bare:
        if not free:
            raise unknown(word)
        key = free.pop(0)
        values[key.name] = read(key, word)
    missing = [k for k in spec.keys if k.default is REQUIRED and k.name not in values]
    if missing:
        raise SerError(f"{command} needs " + " and ".join(f"{k.help} ({k.name}=)" for k in missing)
                       + f". {hint}")
    return {k.name: values.get(k.name, k.default) for k in spec.keys}
