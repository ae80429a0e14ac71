"""Stopping a process and everything it started.

Flower detaches its helpers (one ClientApp process per message, SuperExec) into sessions of
their own, so neither a process group nor a session covers them; the parent links in /proc
do. Standard library only: the trainer's launcher and the local stack's supervisor share it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether pid runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_pids(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM each process, its process group and everything below it; SIGKILL whatever
    outlives the grace period."""
    everyone = [member for pid in pids for member in descendants(pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)  # a session leader's group (no-op for others)
    for member in everyone:
        _signal(member, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in everyone):
        time.sleep(0.1)
    for member in everyone:
        if alive(member):
            _signal(member, signal.SIGKILL)
