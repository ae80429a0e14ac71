"""Runs the local fleet's processes: start, wait until healthy, watch, and stop them all.

Each child gets its own process group (so Ctrl-C reaches only the supervisor, which then stops
every child in order) and its own log file. The running fleet is described in a state file,
which `status` and `down` read, and which stops a second `up` from starting on top of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workloads.processes import NotReady, accepts, answers_ok, stop_pids, wait_ready
from workloads.processes import alive as pid_alive


class LocalStackError(Exception):
    """A problem the operator must act on; the message says what and where."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # unique, e.g. "server-local-us"; also the log file's name
    argv: list[str]
    role: str  # registry, server, edge, prometheus, supernode-metrics, canary
    port: int | None = None
    health_url: str | None = None  # HTTP 200 here means ready; else the port accepting is enough
    url: str | None = None  # what status shows to the operator
    env: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None  # the CA an https:// health_url's certificate chains to
    other_ports: tuple[int, ...] = ()  # its other listeners (escalation, admin), checked free before start


@dataclass
class Running:
    spec: ProcessSpec
    pid: int
    log: Path


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def is_healthy(spec: ProcessSpec, timeout: float = 1.0) -> bool:
    if spec.health_url:
        return answers_ok(spec.health_url, timeout, spec.ca_file)
    if spec.port:
        return accepts(spec.port, timeout)
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"    {line}" for line in text[-lines:])


class Supervisor:
    def __init__(self, out_dir: Path, fleet: dict[str, Any] | None = None):
        self.out_dir = out_dir
        self.fleet = fleet or {}  # how the fleet was started, for commands that act on it later
        self.logs = out_dir / "logs"
        self.state_file = out_dir / "state.json"
        self.children: list[Running] = []
        self._popen: dict[int, subprocess.Popen[bytes]] = {}

    # -- the state file ----------------------------------------------------------------------
    def claim(self) -> None:
        """Refuse to start over a fleet that is still running; clear a stale state file."""
        state = read_state(self.state_file)
        if state:
            alive = [p for p in state["processes"] if pid_alive(p["pid"])]
            if alive or pid_alive(state["supervisor_pid"]):
                raise LocalStackError(
                    f"a local fleet is already running (started {state['started']}, "
                    f"{len(alive)} processes; see `python -m meridian local status`). "
                    "Stop it first with `python -m meridian local down`."
                )
            self.state_file.unlink()
        self.logs.mkdir(parents=True, exist_ok=True)
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "fleet": self.fleet,
            # Without the environments: they hold the servers' admin token.
            "processes": [
                {"pid": c.pid, "log": str(c.log), **{k: v for k, v in asdict(c.spec).items() if k != "env"}}
                for c in self.children
            ],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    # -- processes ---------------------------------------------------------------------------
    def check_ports(self, specs: list[ProcessSpec]) -> None:
        busy = [f"{port} ({s.name})" for s in specs for port in (s.port, *s.other_ports) if port and port_in_use(port)]
        if busy:
            raise LocalStackError(
                f"port(s) already in use: {', '.join(busy)}. Stop whatever holds them, or move "
                "the whole fleet with --port-base."
            )

    def start(self, spec: ProcessSpec, ready_timeout: float = 90.0) -> Running:
        running = self.launch(spec)
        self.wait_ready([running], ready_timeout)
        return running

    def start_all(self, specs: list[ProcessSpec], ready_timeout: float = 90.0) -> list[Running]:
        """Start independent processes side by side, then wait until every one is ready: their
        start-ups (interpreters, imports, model loads) overlap instead of adding up."""
        launched = [self.launch(spec) for spec in specs]
        self.wait_ready(launched, ready_timeout)
        return launched

    def launch(self, spec: ProcessSpec) -> Running:
        """Start one process without waiting for it (see `wait_ready`)."""
        log = self.logs / f"{spec.name}.log"
        handle = log.open("ab")
        try:
            process = subprocess.Popen(
                spec.argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spec.env},
                start_new_session=True,  # Ctrl-C goes to the supervisor, which stops us in order
            )
        except FileNotFoundError as err:
            raise LocalStackError(
                f"{spec.name}: cannot start {spec.argv[0]!r} ({err.strerror}); is the workloads "
                "environment installed (`make venv`)?"
            ) from None
        finally:
            handle.close()
        running = Running(spec, process.pid, log)
        self.children.append(running)
        self._popen[process.pid] = process
        self._write_state()
        return running

    def wait_ready(self, launched: list[Running], ready_timeout: float) -> None:
        """Return once every launched process is ready, all within one `ready_timeout`."""
        deadline = time.monotonic() + ready_timeout
        for running in launched:
            spec = running.spec
            try:
                remaining = max(0.0, deadline - time.monotonic())
                wait_ready(self._popen.get(running.pid), lambda: is_healthy(spec), remaining)  # noqa: B023
            except NotReady as err:  # "<name> exited with code 3 before it was ready; last lines of ..."
                raise LocalStackError(
                    f"{spec.name} {err}; last lines of {running.log}:\n{log_tail(running.log)}"
                ) from None

    def run(self, name: str, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> Path:
        """Run one step to completion (e.g. the canary drill's candidate); its log is kept."""
        for _ in self.run_each({name: argv}, timeout, env):
            pass
        return self.logs / f"{name}.log"

    def run_each(self, steps: dict[str, list[str]], timeout: float, env: dict[str, str] | None = None) -> Iterator[str]:
        """Run independent steps side by side (e.g. each region's localizer pass), each with its
        log; yield each step's name as it succeeds, in the order they finish. A step that fails or
        overruns `timeout` raises LocalStackError naming it, and stops the steps still running."""
        deadline = time.monotonic() + timeout
        running: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, argv in steps.items():
                with (self.logs / f"{name}.log").open("ab") as handle:
                    running[name] = subprocess.Popen(
                        argv,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env={**os.environ, **(env or {})},
                    )
            while running:
                for name, process in list(running.items()):
                    code = process.poll()
                    if code is None:
                        continue
                    del running[name]
                    if code != 0:
                        log = self.logs / f"{name}.log"
                        raise LocalStackError(
                            f"{name} failed with exit code {code}; last lines of {log}:\n{log_tail(log)}"
                        )
                    yield name
                if running and time.monotonic() > deadline:
                    name = next(iter(running))
                    log = self.logs / f"{name}.log"
                    raise LocalStackError(
                        f"{name} did not finish within {timeout:.0f} s; last lines of {log}:\n{log_tail(log)}"
                    )
                time.sleep(0.1)
        finally:  # a failed step, or a caller that stopped early: nothing is left running
            stop_pids([process.pid for process in running.values()])
            for process in running.values():
                process.wait()

    def crashed(self) -> list[str]:
        """Children that exited on their own, with the end of their logs."""
        problems = []
        for child in self.children:
            process = self._popen.get(child.pid)
            code = process.poll() if process else (None if pid_alive(child.pid) else -1)
            if code is not None:
                problems.append(
                    f"{child.spec.name} exited with code {code}; last lines of {child.log}:\n{log_tail(child.log)}"
                )
        return problems

    def stop_all(self) -> None:
        stop_pids([c.pid for c in reversed(self.children)])
        for process in self._popen.values():
            with contextlib.suppress(Exception):
                process.wait(timeout=1)
        self.children.clear()
        self.release()


def read_state(state_file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
