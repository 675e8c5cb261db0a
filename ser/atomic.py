"""The one way ser writes a file that someone else may read: whole or not at all.

A file is written to a temporary name in its own folder (so the rename never crosses a
device), flushed and fsynced, then renamed over the target with ``os.replace``. A process
killed at any moment leaves the old file or the new one, never half of one; a reader running
at the same time sees one of the two. A full disk (ENOSPC, EFBIG, EDQUOT) becomes one
:class:`SerError` that says the previous file is intact, and the temporary file is removed.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from ser.errors import SerError, causes

TEMP_SUFFIX = ".tmp"
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp makes 0600 files, the result gets the usual 0666 & ~umask
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, sync it and rename it
    over ``path``. Returns ``path``. Raises SerError when the disk is full."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # readable by the group as any file the user writes
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        full = _disk_full(exc)
        if full is not None:
            kept = ("The previous version of it is intact. " if path.exists() else
                    "No file that was there before was changed. ")
            raise SerError(f"Could not write {path}: no room for it ({os.strerror(full.errno)}). "
                           f"{kept}Free space on {path.parent} (or move the run or cache folder "
                           "elsewhere: hydra.run.dir=, SER_CACHE=) and run again; a training run "
                           "continues with resume=true.") from exc
        raise
    return path


def _disk_full(exc: BaseException) -> OSError | None:
    """The OSError meaning "no space" in ``exc``'s chain (torch.save wraps it in RuntimeError)."""
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.errno in _FULL:
            return cause
    return None


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """metrics.json, run.json, evaluation.json ...: indented JSON written with :func:`write_atomic`."""
    return write_text_atomic(path, json.dumps(data, indent=2))
