"""Stopping a process stops everything it started, even children in sessions of their own
(as Flower's are); waiting for a started process ends when it is ready, exits, or times out."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from workloads.processes import NotReady, accepts, alive, answers_ok, descendants, stop_pids, wait_ready


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


def test_a_zombie_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # not reaped until wait()
    deadline = time.monotonic() + 10
    while alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child.pid)
    child.wait()


def test_ready_once_the_url_answers_200() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(server, f"http://127.0.0.1:{port}/", timeout=30)
        assert accepts(port)
        assert answers_ok(f"http://127.0.0.1:{port}/")
        assert not answers_ok(f"http://127.0.0.1:{port}/missing")  # a 404 is not ready
    finally:
        server.terminate()
        server.wait()


def test_a_process_that_exits_before_ready_says_its_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(NotReady, match="exited with code 3 before it was ready") as raised:
        wait_ready(process, lambda: False, timeout=30)
    assert raised.value.exit_code == 3


def test_a_process_still_not_ready_at_the_timeout_is_left_to_the_caller() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(NotReady, match="was not ready within 1 s") as raised:
            wait_ready(process, lambda: False, timeout=1)
        assert raised.value.exit_code is None and process.poll() is None
    finally:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
