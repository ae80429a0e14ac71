"""Stopping a process stops everything it started, even children in sessions of their own
(as Flower's are)."""

from __future__ import annotations

import subprocess
import sys
import time

from workloads.processes import alive, descendants, stop_pids


def test_stop_reaches_grandchildren_in_sessions_of_their_own() -> None:
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
        "time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(descendants(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = descendants(parent.pid)
    assert len(tree) == 2
    stop_pids([parent.pid], grace=5)
    parent.wait(timeout=5)
    deadline = time.monotonic() + 10  # a killed process can take a moment to be torn down
    while any(alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in tree)
