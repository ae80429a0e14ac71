"""The supervisor starts, watches and stops the local fleet's processes, and says clearly
what went wrong."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from meridian.local.supervisor import LocalStackError, ProcessSpec, Supervisor


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_dies_before_ready_is_named_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    spec = ProcessSpec("server-x", _python("print('cannot load model'); raise SystemExit(3)"), "server", port=1)
    with pytest.raises(LocalStackError, match=r"server-x exited with code 3(.|\n)*cannot load model"):
        supervisor.start(spec, ready_timeout=30)
    supervisor.stop_all()


def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = ProcessSpec("edge-nyc", _python("pass"), "edge", port=port)
        with pytest.raises(LocalStackError, match=rf"{port} \(edge-nyc\)"):
            Supervisor(tmp_path).check_ports([spec])


def test_a_second_up_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    first = Supervisor(tmp_path)
    first.claim()
    first.start(ProcessSpec("sleeper", _python("import time; time.sleep(60)"), "server"), ready_timeout=5)
    with pytest.raises(LocalStackError, match="already running"):
        Supervisor(tmp_path).claim()
    first.stop_all()
    Supervisor(tmp_path).claim()  # a stopped fleet frees the way


def test_a_crashed_child_is_reported(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    supervisor.start(ProcessSpec("registry", _python("import time; time.sleep(0.5)"), "registry"), ready_timeout=5)
    time.sleep(1.5)
    assert any("registry exited with code 0" in p for p in supervisor.crashed())
    supervisor.stop_all()


def test_a_process_not_ready_in_time_is_named_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    spec = ProcessSpec(
        "slow", _python("print('still loading', flush=True); import time; time.sleep(60)"), "server", port=1
    )
    with pytest.raises(LocalStackError, match=r"slow was not ready within 3 s(.|\n)*still loading"):
        supervisor.start(spec, ready_timeout=3)
    supervisor.stop_all()
