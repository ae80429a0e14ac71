"""The supervisor starts, watches and stops the local fleet's processes, and says clearly
what went wrong."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from meridian.local.supervisor import LocalStackError, ProcessSpec, Supervisor
from workloads.processes import alive as pid_alive


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


def _after(marker: Path, code: str) -> list[str]:
    """A process that runs `code` only once `marker` exists: it can finish only beside the process
    that writes the marker."""
    return _python(f"import pathlib, time\nwhile not pathlib.Path({str(marker)!r}).exists(): time.sleep(0.05)\n{code}")


def test_independent_steps_run_side_by_side_and_each_is_reported_as_it_finishes(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    release = tmp_path / "release"
    steps = supervisor.run_each({"slow": _after(release, "pass"), "fast": _python("pass")}, timeout=60)
    assert next(steps) == "fast"  # while "slow", started first, still runs
    release.touch()
    assert list(steps) == ["slow"]
    assert (supervisor.logs / "slow.log").exists() and (supervisor.logs / "fast.log").exists()


def test_a_failing_step_is_named_with_its_log_and_stops_the_steps_still_running(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    pid_file = tmp_path / "sibling.pid"
    steps = {
        "sibling": _python(f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"),
        "localize-x": _after(pid_file, "print('no global model'); raise SystemExit(3)"),
    }
    with pytest.raises(LocalStackError, match=r"localize-x failed with exit code 3(.|\n)*no global model"):
        list(supervisor.run_each(steps, timeout=60))
    assert not pid_alive(int(pid_file.read_text()))


def test_processes_started_together_all_start_before_any_is_waited_for(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.claim()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    marker = tmp_path / "edge-started"
    listen = f"import socket\ns = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    # The server is ready only once the edge, started after it, has started.
    server = ProcessSpec("server-x", _after(marker, listen), "server", port=port)
    edge = ProcessSpec("edge-x", _python(f"open({str(marker)!r}, 'w').close(); import time; time.sleep(60)"), "edge")
    ready = supervisor.start_all([server, edge], ready_timeout=30)
    assert [running.spec.name for running in ready] == ["server-x", "edge-x"]
    supervisor.stop_all()
