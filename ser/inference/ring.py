"""A fixed-size ring of the most recent audio samples, for classifying a live stream.

Live input arrives one hop at a time but the network needs the last whole window; a ring
keeps exactly ``size`` float32 samples in one preallocated array, so memory stays flat however
long the stream runs (a list of chunks or ``np.concatenate`` per hop would grow or churn).
"""

from __future__ import annotations

import numpy as np


class Ring:
    """The last ``size`` samples pushed, oldest first on :meth:`read`.

    ``filled`` counts valid samples (< size until the first window is complete); ``total``
    counts every sample ever pushed (the stream time in samples).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"ring size must be at least one sample, got {size}")
        self.size = int(size)
        self._buf = np.zeros(self.size, np.float32)
        self._pos = 0  # where the next sample goes
        self.filled = 0
        self.total = 0

    def push(self, samples: np.ndarray) -> None:
        """Append (k,) samples; when k >= size only the last ``size`` are kept."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        k = samples.shape[0]
        self.total += k
        if k >= self.size:
            self._buf[:] = samples[-self.size:]
            self._pos, self.filled = 0, self.size
            return
        first = min(k, self.size - self._pos)
        self._buf[self._pos: self._pos + first] = samples[:first]
        self._buf[: k - first] = samples[first:]
        self._pos = (self._pos + k) % self.size
        self.filled = min(self.size, self.filled + k)

    def read(self, out: np.ndarray | None = None) -> np.ndarray:
        """(size,) the ring's samples in time order, into ``out`` if given (no allocation).

        Before the ring is full the not-yet-written part is zeros at the start (the oldest end).
        """
        if out is None:
            out = np.empty(self.size, np.float32)
        tail = self.size - self._pos
        out[:tail] = self._buf[self._pos:]
        out[tail:] = self._buf[: self._pos]
        return out

    def latest(self, n: int) -> np.ndarray:
        """(min(n, filled),) the most recent samples, oldest first (a copy)."""
        n = min(int(n), self.filled)
        return self.read()[self.size - n:] if n else np.zeros(0, np.float32)

    def __len__(self) -> int:
        return self.filled
