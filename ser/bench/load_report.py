"""What a load run measured and what went wrong in it: :class:`LoadReport`, filled in by the
honest clients of :mod:`ser.bench.serve_load` and the hostile ones of
:mod:`ser.bench.hostile_clients` from their threads (hence the lock), and printed as the bench's
part (i) line. Its own module so that both kinds of client can write to it without importing
each other."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadReport:
    """Every figure and problem of one load run, written from many client threads at once."""
    hop_ms: list[float] = field(default_factory=list)
    upload_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_mib: tuple[float, float] = (float("nan"), float("nan"))  # after warm-up, after the run
    rss_peak_mib: float = float("nan")
    retried: int = 0                                              # honest uploads answered 503 first
    hostile: Counter = field(default_factory=Counter)             # "kind outcome" -> count
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, key: str, problem: bool = False) -> None:
        """One more hostile client with this outcome (and a problem when it should not be)."""
        with self.lock:
            self.hostile[key] += 1
            if problem:
                self.problems.append(key)

    def line(self, streams: int, seconds: float) -> str:
        p = lambda xs, q: float(np.percentile(xs, q)) if xs else float("nan")  # noqa: E731
        text = (f"(i) ser.serve on 127.0.0.1, {streams} streams x {seconds:g} s at real time + "
                f"{len(self.upload_ms)} uploads: per hop p50 {p(self.hop_ms, 50):.1f} ms, p95 "
                f"{p(self.hop_ms, 95):.1f} ms ({len(self.hop_ms)} hops); per upload p50 "
                f"{p(self.upload_ms, 50):.0f} ms, p95 {p(self.upload_ms, 95):.0f} ms"
                + (f" ({self.retried} retried after 503)" if self.retried else "")
                + f"; /health p50 {p(self.health_ms, 50):.1f} ms, p95 {p(self.health_ms, 95):.1f} ms, "
                f"max {max(self.health_ms, default=float('nan')):.0f} ms ({len(self.health_ms)}); "
                f"server RSS {self.rss_mib[0]:.0f} -> peak {self.rss_peak_mib:.0f} -> settled "
                f"{self.rss_mib[1]:.0f} MiB; "
                + ("no stream got another's results, no error" if not self.problems
                   else f"{len(self.problems)} problem(s): " + "; ".join(self.problems[:3])))
        if self.hostile:
            text += "\n(i) beside them, hostile clients got: " + ", ".join(
                f"{key} x{n}" for key, n in sorted(self.hostile.items()))
        return text
