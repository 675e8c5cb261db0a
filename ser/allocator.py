"""Keep freed memory in the process: glibc's allocator told not to hand large blocks back.

A training step on the CPU allocates and frees buffers of tens to hundreds of MB (a batch of
128 images of 256×256 is 100 MB; EfficientNet's early activations at that batch are 270 MB
each). glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh
``mmap`` and returns it to the kernel at ``free``, so the next step faults in the same amount
again, page by zeroed page, and the kernel's time can equal the model's (docs/speed.md has
the measurement). With
``M_MMAP_MAX=0`` every block comes from the heap and is reused by the next step;
``M_TRIM_THRESHOLD`` of 1 GiB still gives memory back once more than that lies free at the
top of the heap, so resident memory stays within about a GiB of the peak a step needs.

Applied by the commands when they start (:func:`ser.cli.prepare_process`), before torch
allocates anything, not by importing :mod:`ser`; ``SER_MALLOC=default``
leaves the allocator as the C library set it. Elsewhere than glibc (macOS, musl) it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
TRIM_THRESHOLD_BYTES = 1 << 30

_applied: dict[str, int] | None = None


def configure_allocator() -> dict[str, int]:
    """Apply the settings once; returns what was set (empty when nothing was)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = {}
    if os.environ.get("SER_MALLOC", "").lower() == "default" or not sys.platform.startswith("linux"):
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for name, param, value in (("M_MMAP_MAX", M_MMAP_MAX, 0),
                               ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        if mallopt(param, value) == 1:
            _applied[name] = value
    return _applied
