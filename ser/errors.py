"""The one exception type users see.

Entry points catch :class:`SerError` and print its message without a traceback, so every
message must stand alone as one paragraph: what was expected, where, and how to fix it.
"""

from __future__ import annotations

from typing import Iterator


class SerError(Exception):
    """A problem with the user's input or configuration, explained in one paragraph."""


class AudioDecodeError(SerError):
    """An audio file exists but cannot be decoded; corpus readers skip and count these."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, then what caused it (``raise ... from``, or raised while handling), and so on."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        yield exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__


def ser_error_in(exc: BaseException | None) -> SerError | None:
    """The SerError in ``exc``'s chain of causes, if any: Hydra's ``instantiate`` and Lightning
    wrap the errors of the code they call, so the user's one paragraph sits inside theirs."""
    return next((e for e in causes(exc) if isinstance(e, SerError)), None)
