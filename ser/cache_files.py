"""Cache files that are checked before they are trusted: decoded blocks, noise banks, the demo
corpus (in ``~/.cache/ser``, or ``SER_CACHE``).

Each cache file is written atomically (:mod:`ser.atomic`) and its size and SHA-256 are recorded
beside it in ``<file>.sum``. Before a cache file is read, both are checked: a file truncated by
a full disk, damaged on disk or left by an older version without a record is never read; a
damaged one is rebuilt with one :class:`CacheWarning`. Building happens under an exclusive lock
on ``<file>.lock``, so parallel jobs starting on an empty cache build it once: the first builds,
the others wait and then read the verified file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TypeVar

from ser.atomic import write_atomic, write_json_atomic

T = TypeVar("T")
SUM_SUFFIX = ".sum"
LOCK_SUFFIX = ".lock"


class CacheWarning(UserWarning):
    """A cache file was damaged on disk and is being rebuilt."""


def file_record(path: str | Path) -> dict:
    """``{"size": bytes, "sha256": hex}`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"size": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def bytes_record(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def damage(path: str | Path, record: dict) -> str | None:
    """Why ``path`` does not match its ``record`` (missing, size, checksum), or None if it does."""
    path = Path(path)
    if not path.is_file():
        return "it is missing"
    size = path.stat().st_size
    if size != record.get("size"):
        return f"it holds {size} bytes instead of {record.get('size')}"
    if file_record(path)["sha256"] != record.get("sha256"):
        return "its checksum does not match what was written"
    return None


def warn_damaged(path: str | Path, why: str) -> None:
    warnings.warn(f"Cache file {path} is damaged ({why}); rebuilding it.", CacheWarning, stacklevel=3)


@contextlib.contextmanager
def cache_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` for the block (none where the folder is read-only
    or the platform has no ``fcntl``: then concurrent builders only cost time, the atomic
    rename still keeps every file whole)."""
    lock = Path(f"{path}{LOCK_SUFFIX}")
    try:
        import fcntl

        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+b")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def load_verified(path: Path, load: Callable[[Path], T | None]) -> T | None:
    """``load(path)`` when ``path`` matches its recorded size and checksum, else None (after
    one warning when it is damaged). ``load`` may return None for a file of other data."""
    sums = Path(f"{path}{SUM_SUFFIX}")
    if not path.is_file() or not sums.is_file():
        return None  # never built, or built before its size and checksum were recorded
    try:
        why = damage(path, json.loads(sums.read_text()))
    except (OSError, ValueError, AttributeError) as exc:
        why = f"its record {sums.name} is unreadable: {exc}"
    if why is None:
        try:
            return load(path)
        except Exception as exc:  # whole but unreadable here (another numpy's layout ...)
            why = f"{type(exc).__name__}: {exc}"
    warn_damaged(path, why)
    return None


def save_verified(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` atomically, then its size and checksum record."""
    write_atomic(path, write)
    write_json_atomic(Path(f"{path}{SUM_SUFFIX}"), file_record(path))


def cached(path: str | Path | None, load: Callable[[Path], T | None], build: Callable[[], T],
           write: Callable[[BinaryIO, T], None]) -> T:
    """The verified cache at ``path``, or ``build()`` saved there with ``write(file, value)``;
    under the cache lock, so that concurrent callers build once. ``path=None``: no cache."""
    if path is None:
        return build()
    path = Path(path)
    with cache_lock(path):
        found = load_verified(path, load)
        if found is not None:
            return found
        value = build()
        save_verified(path, lambda f: write(f, value))
        return value
