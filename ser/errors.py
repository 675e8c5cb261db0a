"""The one exception type users see.

Entry points catch :class:`SerError` and print its message without a traceback, so every
message must stand alone as one paragraph: what was expected, where, and how to fix it.
"""

from __future__ import annotations


class SerError(Exception):
    """A problem with the user's input or configuration, explained in one paragraph."""


class AudioDecodeError(SerError):
    """An audio file exists but cannot be decoded; corpus readers skip and count these."""
