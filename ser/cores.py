"""How many intra-op threads a command takes: its share of the cores, not all of them.

torch starts one intra-op thread per core it sees, whatever else runs. Two trainings side by
side on 2 cores then keep 4 busy threads on 2 cores, and each operation's threads wait for one
another: a step took 5.1 s instead of 0.29 s. So each ser process records the threads it takes
in one small file per user (``$TMPDIR/ser-cores-<uid>.json``, under a file lock), and a new one
takes the cores its CPU affinity allows minus those that live ser processes already hold (at
least one). The jobs of ``hydra/launcher=parallel`` each register as they start, so they split
the machine without being told. ``OMP_NUM_THREADS`` (or a command's ``threads=``) decides
instead where set.

Waiting threads: OpenMP's default lets a thread that waits for the next parallel region spin
for a moment before it sleeps. Alone, that is the fastest (a default-recipe step on 2 cores:
0.19-0.24 s, against 0.34-0.37 s when waiting threads sleep at once, ``OMP_WAIT_POLICY=PASSIVE``);
with more threads than free cores, the spinning threads steal the cores the working ones need
(two runs of 2 threads on 2 cores: 0.83-1.64 s per step spinning, 0.45-0.51 s sleeping). So a
process whose threads would exceed the cores left free by other ser processes (a number forced
by ``threads=`` or ``OMP_NUM_THREADS``, or a run started when others hold every core) starts with
``OMP_WAIT_POLICY=PASSIVE``; one that fits keeps the default. The policy is read once, when
torch loads OpenMP, and a setting of the user's is never changed.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import tempfile
from pathlib import Path

# The user's own OMP_NUM_THREADS ("" if unset), noted by the command before Hydra starts: a
# parallel sweep's workers inherit it, while joblib's launcher sets OMP_NUM_THREADS in each
# worker itself (cores // jobs), which would otherwise pass for the user's choice and keep the
# last job on one thread when it runs alone.
USER_SETTING = "SER_USER_OMP_NUM_THREADS"

_auto = False   # this process chose its threads itself (no number, no OMP_NUM_THREADS)
_crowded = False   # at its start, its threads and other ser processes' exceeded the usable cores
REGISTRY = Path(tempfile.gettempdir()) / f"ser-cores-{os.getuid() if hasattr(os, 'getuid') else 0}.json"


def note_user_threads() -> None:
    """Note the user's OMP_NUM_THREADS for the processes this command starts (first call wins)."""
    os.environ.setdefault(USER_SETTING, os.environ.get("OMP_NUM_THREADS", ""))


def users_threads() -> str | None:
    """OMP_NUM_THREADS if the user set it (not a launcher in between); else None."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if not value.isdigit():
        return None
    noted = os.environ.get(USER_SETTING)
    return value if noted is None or noted == value else None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _update(change) -> dict[int, int]:
    """Read the registry (dropping processes that ended), apply ``change`` to it, write it back,
    all under an exclusive lock; returns what it held before the change."""
    import fcntl

    with open(REGISTRY.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            held = {int(k): int(v) for k, v in json.loads(REGISTRY.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            held = {}
        held = {pid: n for pid, n in held.items() if pid != os.getpid() and _alive(pid)}
        after = change(dict(held))
        tmp = REGISTRY.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(after))
        os.replace(tmp, REGISTRY)
    return held


def choose_threads(requested: int | str | None = "auto") -> tuple[int, str]:
    """(threads, why): ``requested`` if a number, else ``OMP_NUM_THREADS`` if set, else the
    usable cores minus those other live ser processes hold (at least 1); registers the choice."""
    users = users_threads()
    if requested not in (None, "auto", ""):
        n, why = max(1, int(requested)), f"threads={requested}"
    elif users is not None:
        n, why = max(1, int(users)), f"OMP_NUM_THREADS={users}"
    else:
        n, why = 0, ""
    cores = usable_cores()
    pid = os.getpid()
    global _auto, _crowded
    _auto = not n
    if n:
        held = _update(lambda held: {**held, pid: n})
        _crowded = n + sum(held.values()) > cores
        return n, why
    chosen = {}

    def take(held: dict[int, int]) -> dict[int, int]:
        busy = sum(held.values())
        chosen["n"] = max(1, cores - busy)
        chosen["crowded"] = chosen["n"] + busy > cores
        chosen["why"] = (f"{cores} usable core(s), {busy} held by {len(held)} other ser process(es)"
                         if held else f"{cores} usable core(s), no other ser process")
        return {**held, pid: chosen["n"]}

    try:
        _update(take)
    except (OSError, ImportError):  # no lockable temporary folder, or no fcntl: all cores
        return cores, f"{cores} usable core(s) (the shared record of other processes is unavailable)"
    atexit.register(release)
    _crowded = chosen["crowded"]
    return chosen["n"], chosen["why"]


def rebalance() -> int | None:
    """Re-take this process's fair share, ``usable cores // live ser processes`` (at least 1),
    when it chose its threads itself (``auto``): a run that started alone gives cores back when
    a second one starts, and takes them again when it ends. Returns the new count if it changed."""
    import torch

    if users_threads() is not None or not _auto:
        return None
    cores, pid, new = usable_cores(), os.getpid(), {}

    def share(held: dict[int, int]) -> dict[int, int]:
        new["n"] = max(1, cores // (1 + len(held)))
        return {**held, pid: new["n"]}

    try:
        _update(share)
    except (OSError, ImportError):
        return None
    if new["n"] == torch.get_num_threads():
        return None
    torch.set_num_threads(new["n"])
    return new["n"]


def release() -> None:
    """Drop this process from the registry (at exit; a crashed one is dropped when next read)."""
    try:
        _update(lambda held: held)
    except (OSError, ImportError):
        pass


def apply_threads(requested: int | str | None = "auto") -> str:
    """Set torch's intra-op threads to :func:`choose_threads` (and, before torch loads OpenMP,
    the wait policy that suits them: see the module's docstring); the line a command logs."""
    n, why = choose_threads(requested)
    sleeping = ""
    if _crowded and "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"   # read when torch loads OpenMP
        sleeping = "; more threads than free cores, so waiting threads sleep"
    import torch

    torch.set_num_threads(n)
    return f"Threads: {n} intra-op ({why}{sleeping})."
