"""Reusable per-thread work buffers for the CPU image pipeline.

Making a chunk of images allocates a handful of 1–2 MB intermediates. Fresh allocations of that
size come straight from the kernel (glibc hands them out as new mappings and trims them on
free), and the first touch of every 4 KiB page then faults: measured, that cost as much CPU
time as the FFT. A :class:`Scratch` keeps one buffer per (tag, shape, dtype, device) and hands
it back on the next call, so a thread that makes chunk after chunk reuses warm memory.

A buffer is only valid until the same thread asks for the same tag again: results that leave
the pipeline must be copied out (the final images are written into a fresh tensor).
"""

from __future__ import annotations

import threading

import torch

_LOCAL = threading.local()


class Scratch:
    """Buffers of one thread, keyed by (tag, shape, dtype, device)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, tag: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
            device: torch.device | str = "cpu", zero: bool = False) -> torch.Tensor:
        """A buffer of ``shape``; ``zero=True`` zeroes it when it is first made (callers that
        only ever write its middle, e.g. a padded signal, keep zero margins for free)."""
        key = (tag, tuple(shape), dtype, str(device))
        buffer = self._buffers.get(key)
        if buffer is None:
            if len(self._buffers) >= 64:  # many odd chunk sizes: start over, stay bounded
                self._buffers.clear()
            make = torch.zeros if zero else torch.empty
            # Never an inference tensor: a buffer first made during validation (Lightning runs
            # it in inference mode) must still take in-place writes in the next training step.
            with torch.inference_mode(False):
                buffer = self._buffers[key] = make(shape, dtype=dtype, device=device)
        return buffer


def thread_scratch() -> Scratch:
    """This thread's :class:`Scratch` (one per thread, so chunks made in parallel never share)."""
    scratch = getattr(_LOCAL, "scratch", None)
    if scratch is None:
        scratch = _LOCAL.scratch = Scratch()
    return scratch


def buffer(scratch: Scratch | None, tag: str, shape: tuple[int, ...],
           dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
           zero: bool = False) -> torch.Tensor:
    """``scratch.get(...)``, or a fresh tensor when there is no scratch."""
    if scratch is None:
        make = torch.zeros if zero else torch.empty
        return make(shape, dtype=dtype, device=device)
    return scratch.get(tag, shape, dtype, device, zero)
