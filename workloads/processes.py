"""The processes our tools start: waiting until one is ready, and stopping one with everything
it started.

Flower detaches its helpers (one ClientApp process per message, SuperExec) into sessions of
their own, so neither a process group nor a session covers them; the parent links do, read
through psutil so that this works wherever the local stack runs (Linux, macOS). The trainer's
launcher, the local stack's supervisor, the serving benchmark and the serving tests share it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import psutil

# Readiness is asked of a process on this machine: never through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotReady(Exception):
    """A started process did not become ready: it exited first (`exit_code` says how), or it
    still ran when `timeout` seconds had passed (`exit_code` is None). The message reads after
    the process's name, e.g. f"{name} {error}"; callers add the log they keep."""

    def __init__(self, exit_code: int | None, timeout: float) -> None:
        self.exit_code = exit_code
        self.timeout = timeout
        if exit_code is None:
            super().__init__(f"was not ready within {timeout:.0f} s")
        else:
            super().__init__(f"exited with code {exit_code} before it was ready")


def answers_ok(url: str, timeout: float = 1.0, cafile: str | None = None) -> bool:
    """Whether a GET of url answers HTTP 200 within timeout seconds (an https:// url verified
    against `cafile` when given: a server of a private CA, such as the local stack's)."""
    opener = _DIRECT
    if cafile is not None:
        https = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), https)
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):  # refused, reset, timed out, 503 (HTTPError)
        return False


def accepts(port: int, timeout: float = 1.0) -> bool:
    """Whether something listens on port of the loopback interface."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout):
        return True
    return False


def wait_ready(
    process: subprocess.Popen[Any] | None, ready: str | Callable[[], bool], timeout: float, poll: float = 0.2
) -> None:
    """Return once `ready` holds: a URL answers HTTP 200, or the check (e.g. `accepts`) returns
    True. Raise NotReady if `process` exits first or `timeout` seconds pass. `process` None: the
    server runs inside this process (a thread), so there is no exit to watch for."""
    check = (lambda: answers_ok(ready)) if isinstance(ready, str) else ready
    deadline = time.monotonic() + timeout
    while not check():
        if process is not None and process.poll() is not None:
            raise NotReady(process.returncode, timeout)
        if time.monotonic() > deadline:
            raise NotReady(None, timeout)
        time.sleep(poll)


def alive(pid: int) -> bool:
    """Whether pid runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess too, where the platform raises it
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return [pid]
    return [pid, *(child.pid for child in below)]


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
