"""Output buffers that are handed out again once nobody holds them any more.

A batch of 128 images is 100 MB of float32. Freshly allocated, that memory comes from the
kernel page by page, zeroed, and training pays for it on every step (docs/speed.md measures
it). The step that consumed last batch's
images has let them go by the time the next batch is made, so the same memory can be written
again. Whether it really is free is read from the storage's reference count, never assumed:
a buffer that any tensor (a view, a tensor saved for backward, a numpy array) still uses is
left alone and a new one is made.
"""

from __future__ import annotations

from typing import Callable

import torch

_storage_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _only_here(tensor: torch.Tensor) -> bool:
    """True when ``tensor`` (held by the pool) is the only user of its memory."""
    if _storage_use_count is None:  # an older or newer torch without the counter: never reuse
        return False
    storage = tensor.untyped_storage()  # this Python handle counts once
    return tensor._use_count() == 1 and _storage_use_count(storage._cdata) == 2


class ReusableBuffers:
    """Keeps the last ``slots`` buffers made; :meth:`get` returns a free one that matches, or
    a new one from ``make``. Callers get a view, never the kept tensor itself, so every tensor
    they pass on counts as a user of the memory."""

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self._buffers: list[torch.Tensor] = []

    def get(self, shape: tuple[int, ...], dtype: torch.dtype, memory_format: torch.memory_format,
            make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A free kept buffer of ``shape`` and ``dtype``, dense in ``memory_format``, else
        ``make()`` (which must return one)."""
        for index, held in enumerate(self._buffers):
            if (tuple(held.shape) == tuple(shape) and held.dtype == dtype
                    and held.is_contiguous(memory_format=memory_format) and _only_here(held)):
                self._buffers.append(self._buffers.pop(index))  # most recently used last
                return _view(held)
        made = make()
        self._buffers.append(made)
        del self._buffers[: -self.slots]
        return _view(made)


def _view(buffer: torch.Tensor) -> torch.Tensor:
    return buffer.as_strided(buffer.shape, buffer.stride(), buffer.storage_offset())
