"""A whole federation as local processes: one SuperLink and one SuperNode per region, TLS and
node authentication on, on loopback ports chosen at run time. Used by the tests, the
benchmark and the local stack; every process it starts is stopped by `close()` (or leaving
the `with` block), children included.

By default (isolation="process") each SuperNode runs with `--isolation process` beside its
own long-lived ClientApp process (clientapp_runner.py: torch and the app imported once, each
message's task forked warm from it), and waits at most `poll_interval` between its polls
(supernode.py); the two are started, checked and stopped together, the runner's log next to
the node's (logs/clientapp-<region>.log). isolation="subprocess" is Flower's default instead:
a fresh `flwr-clientapp` process per message and Flower's own poll intervals (the benchmark's
"before").

    python -m workloads.trainer.launch --workdir out/federation --regions eu,us,apac \
        [--task digits --alpha 0.5 --seed 0] [--run-config 'rounds=3 compression="topk"']

prepares each region's data (if missing), generates certificates and node keys, starts the
federation, runs the app once, prints where the records and the model are, and stops it all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flwr.common.config import parse_config_args

from workloads.contract import (
    CLIENTAPP_RUNNER_MODULE,
    ENV_FLEET_POLL_SECONDS,
    ENV_TRAINING_RECORDS,
    SUPEREXEC_SECRET_FILE,
    SUPERNODE_MODULE,
    flwr_connection_config,
)
from workloads.processes import NotReady, accepts, stop_pids, wait_ready
from workloads.trainer.certs import FederationCredentials, generate
from workloads.trainer.records import MODEL_INFO_FILE, read_rounds

APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parents[1]
CONNECTION = "meridian"
_BIN = Path(sys.executable).parent  # the environment's console scripts (flwr, flower-*)
_STOP_GRACE_SECONDS = 10.0
ISOLATIONS = ("process", "subprocess")


class FederationError(RuntimeError):
    """A process of the federation failed; the message names it and quotes its log."""


@dataclass
class Node:
    region: str
    data_dir: Path
    fault: str | None = None  # see faults.py: "sign-flip" or "nan", for drills
    fault_scale: float = 1.0
    # Where its ClientApp appends a record per local fit (contract.ENV_TRAINING_RECORDS), for
    # its metrics exporter (workloads.trainer.node_metrics); None: no records.
    training_records: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Its long-lived ClientApp process (isolation="process"), started and stopped with it.
    clientapp_process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RunResult:
    run_id: int
    out_dir: Path
    rounds: list[dict[str, Any]]
    model_info: dict[str, Any]
    traffic_bytes: dict[str, int]  # the SuperLink's own count for the run (inbound, outbound, total)
    seconds: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and all its descendants, then reap it."""
    stop_pids([process.pid], grace=_STOP_GRACE_SECONDS)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _toml_value(value: object) -> str:
    if isinstance(value, bool | int | float | str):
        return json.dumps(value)  # JSON scalars are valid TOML scalars
    raise TypeError(f"run config values must be str, int, float or bool, not {type(value).__name__}")


def _node_config(node: Node) -> str:
    values: dict[str, object] = {"region": node.region, "data-dir": str(node.data_dir.resolve())}
    if node.fault:
        values.update({"fault": node.fault, "fault-scale": node.fault_scale})
    return " ".join(f"{key}={_toml_value(value)}" for key, value in values.items())


class LocalFederation:
    def __init__(
        self,
        workdir: Path,
        nodes: Sequence[Node],
        *,
        python_path: Sequence[Path] = (),
        threads_per_node: int = 1,
        ready_timeout: float = 90.0,
        superlink_env: Mapping[str, str] | None = None,
        isolation: str = "process",
        poll_interval: float | None = 0.1,
    ) -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation={isolation!r} is not one of: {', '.join(ISOLATIONS)}")
        self.isolation = isolation
        # Seconds a node waits at most between polls of the SuperLink and of its Runtime API
        # (None: Flower's own 3 s and 1 s).
        self.poll_interval = poll_interval
        self.workdir = workdir.resolve()
        self.nodes = {node.region: node for node in nodes}
        self.logs = self.workdir / "logs"
        self.ready_timeout = ready_timeout
        self.superlink: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.node_ids: dict[str, int] = {}
        paths = [str(REPO_ROOT), *(str(Path(p).resolve()) for p in python_path)]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        self.env = {
            **os.environ,
            "FLWR_HOME": str(self.workdir / "flwr-home"),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PYTHONPATH": os.pathsep.join(paths),
            "PATH": os.pathsep.join([str(_BIN), os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
            # Regions share this machine's cores: one thread each avoids oversubscription.
            "OMP_NUM_THREADS": str(threads_per_node),
        }
        # The SuperLink's own additions (its ServerApp subprocess inherits them), e.g. where it
        # publishes the global model: contract.global_publish_env.
        self.superlink_env = dict(superlink_env or {})
        self.credentials: FederationCredentials | None = None

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(
        self, name: str, command: list[str], append: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab" if append else "wb")
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**self.env, **(env or {})}, cwd=self.workdir
        )

    def _log_tail(self, name: str, lines: int = 25) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _flwr(self, *args: str, timeout: float = 60.0) -> dict[str, Any]:
        """A `flwr` CLI command with JSON output; FederationError unless it succeeded."""
        result = subprocess.run(
            [str(_BIN / "flwr"), *args, "--format", "json"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # a failure is read from the JSON answer and reported with it
        )
        answer = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
        if result.returncode != 0 or not answer.get("success"):
            raise FederationError(f"flwr {' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return answer

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        certs = self.workdir / "certs"
        names = list(self.nodes)
        self.credentials = FederationCredentials.at(certs, names)
        if not all(p.exists() for p in self.credentials.node_private_keys.values()):
            self.credentials = generate(certs, names, force=True)
        creds = self.credentials
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.superlink = self._spawn(
            "superlink",
            [
                str(_BIN / "flower-superlink"),
                "--ssl-ca-certfile", str(creds.ca_cert),
                "--ssl-certfile", str(creds.superlink_cert),
                "--ssl-keyfile", str(creds.superlink_key),
                "--enable-supernode-auth",
                "--disable-runtime-dependency-installation",
                "--host", "127.0.0.1",
                "--port", str(port),
            ],
            env=self.superlink_env,
        )  # fmt: skip
        self._wait_for_port(port, self.superlink, "superlink")
        home = Path(self.env["FLWR_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(flwr_connection_config(CONNECTION, self.address, str(creds.ca_cert)))
        # Side by side: each registration is a `flwr` process paying Flower's import on its own.
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            registered = pool.map(
                lambda region: self._flwr("supernode", "register", str(creds.node_public_keys[region]), CONNECTION),
                names,
            )
            self.node_ids.update(
                {region: int(answer["node-id"]) for region, answer in zip(names, registered, strict=True)}
            )
        for region in names:
            self.start_node(region, wait=False)
        self.wait_until_online(names)

    def _wait_for_port(self, port: int, process: subprocess.Popen[bytes], name: str) -> None:
        try:
            wait_ready(process, lambda: accepts(port), self.ready_timeout)
        except NotReady as err:
            if err.exit_code is None:
                raise FederationError(f"{name} did not listen on port {port} within {self.ready_timeout:g}s") from None
            raise FederationError(f"{name} exited with {err.exit_code}:\n{self._log_tail(name)}") from None

    def online_regions(self) -> set[str]:
        listed = self._flwr("supernode", "list", CONNECTION)
        online = {int(n["node-id"]) for n in listed["nodes"] if n["status"] == "online"}
        return {region for region, node_id in self.node_ids.items() if node_id in online}

    def wait_until_online(self, regions: Sequence[str]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            for region in regions:
                self._check_alive(region)
            if set(regions) <= self.online_regions():
                return
            time.sleep(0.5)
        raise FederationError(
            f"SuperNodes {sorted(set(regions) - self.online_regions())} not online after {self.ready_timeout:g}s"
        )

    def _check_alive(self, region: str) -> None:
        node = self.nodes[region]
        for name, process in ((f"supernode-{region}", node.process), (f"clientapp-{region}", node.clientapp_process)):
            if process is not None and process.poll() is not None:
                raise FederationError(f"{name} exited with {process.returncode}:\n{self._log_tail(name)}")

    def start_node(self, region: str, wait: bool = True) -> None:
        node, creds = self.nodes[region], self.credentials
        assert creds is not None, "start() the federation first"
        runtime_port = free_port()
        # The ClientApp runs in the runner's process tree (process) or the SuperNode's (subprocess).
        app_env = {ENV_TRAINING_RECORDS: str(node.training_records.resolve())} if node.training_records else {}
        command = [
            "--root-certificates", str(creds.ca_cert),
            "--superlink", self.address,
            "--auth-supernode-private-key", str(creds.node_private_keys[region]),
            "--node-config", _node_config(node),
            "--host", "127.0.0.1",
            "--port", str(runtime_port),
        ]  # fmt: skip
        if self.isolation == "subprocess":
            node.process = self._spawn(f"supernode-{region}", [str(_BIN / "flower-supernode"), *command], env=app_env)
        else:
            secret = self._superexec_secret(region)
            node_env = {ENV_FLEET_POLL_SECONDS: str(self.poll_interval)} if self.poll_interval else {}
            secret_flag = ["--superexec-auth-secret-file", str(secret)]
            node.process = self._spawn(
                f"supernode-{region}",
                [sys.executable, "-m", SUPERNODE_MODULE, *command, "--isolation", "process", *secret_flag],
                env=node_env,
            )
            poll = ["--poll-interval", str(self.poll_interval)] if self.poll_interval else []
            node.clientapp_process = self._spawn(
                f"clientapp-{region}",
                [sys.executable, "-m", CLIENTAPP_RUNNER_MODULE, "--runtime-api-address",
                 f"127.0.0.1:{runtime_port}", *secret_flag, *poll],
                env=app_env,
            )  # fmt: skip
        if wait:
            self.wait_until_online([region])

    def _superexec_secret(self, region: str) -> Path:
        """The secret a node's Runtime API asks of whoever acquires its tasks: its own runner."""
        path = self.workdir / "certs" / f"{region}.{SUPEREXEC_SECRET_FILE}"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_bytes(32))
        return path

    def stop_node(self, region: str) -> None:
        node = self.nodes[region]
        for process in (node.clientapp_process, node.process):
            if process is not None:
                stop_tree(process)
        node.process = node.clientapp_process = None

    def _restart_failed_nodes(self) -> None:
        """Supervision between runs: a node whose SuperNode or ClientApp process has exited
        (not one stopped on purpose) is restarted whole, its log saying why."""
        for region, node in self.nodes.items():
            if node.process is None:
                continue
            try:
                self._check_alive(region)
            except FederationError as err:
                with (self.logs / f"supernode-{region}.log").open("a") as log:
                    log.write(f"\n[launch] restarting the node: {err}\n")
                self.stop_node(region)
                self.start_node(region)

    def run(
        self, run_config: Mapping[str, object], timeout: float = 600.0, *, run_name: str | None = None
    ) -> RunResult:
        """Run the trainer app once and wait for it; FederationError if it fails or overruns."""
        self._restart_failed_nodes()
        run_name = run_name or f"run-{int(time.time() * 1000)}"
        out_dir = Path(str(run_config.get("out-dir", self.workdir / run_name))).resolve()
        config = {**run_config, "out-dir": str(out_dir)}
        config_file = self.workdir / f"{run_name}.toml"
        config_file.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items()))
        started = time.monotonic()
        run_id = int(self._flwr("run", str(APP_DIR), CONNECTION, "--run-config", str(config_file))["run-id"])
        # The run's log, streamed until the run ends: waiting for it is waiting for the run.
        stream = self._spawn(run_name, [str(_BIN / "flwr"), "log", str(run_id), CONNECTION, "--stream"], append=False)
        try:
            stream.wait(timeout=max(0.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            stop_tree(stream)
            self._flwr("stop", str(run_id), CONNECTION)
            raise FederationError(
                f"{run_name} did not finish within {timeout:g}s:\n{self._log_tail(run_name)}"
            ) from None
        seconds = time.monotonic() - started
        status = self._flwr("ls", CONNECTION, "--run-id", str(run_id))["runs"][0]
        if status["status"] != "finished:completed":
            raise FederationError(f"{run_name} ended {status['status']}:\n{self._log_tail(run_name, 40)}")
        return RunResult(
            run_id=run_id,
            out_dir=out_dir,
            rounds=read_rounds(out_dir),
            model_info=json.loads((out_dir / MODEL_INFO_FILE).read_text()),
            traffic_bytes={k.removesuffix("-bytes"): int(v) for k, v in status["network-traffic"].items()},
            seconds=seconds,
        )

    def close(self) -> None:
        for region in self.nodes:
            self.stop_node(region)
        if self.superlink is not None:
            stop_tree(self.superlink)
            self.superlink = None


def main(argv: list[str] | None = None) -> int:
    from workloads.tasks.__main__ import prepare_data

    parser = argparse.ArgumentParser(
        prog="python -m workloads.trainer.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, default=Path("out/federation"))
    parser.add_argument("--regions", required=True, help="comma-separated region names")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-config", default="", help="space-separated key=value (TOML values)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.regions.split(",")]
    data = args.workdir / "data"
    if not all((data / r / "shard.npz").exists() for r in regions):
        prepare_data(args.task, regions, data, args.seed, args.alpha)
    overrides = parse_config_args([args.run_config]) if args.run_config else {}
    run_config = {"task": args.task, "seed": args.seed, **overrides}
    nodes = [Node(region, data / region) for region in regions]
    try:
        with LocalFederation(args.workdir, nodes) as federation:
            result = federation.run(run_config, timeout=args.timeout, run_name="run")
    except FederationError as err:
        print(f"launch: {err}", file=sys.stderr)
        return 1
    for record in result.rounds:
        print(
            f"round {record['round']}: accuracy {record['global']['accuracy']:.3f}, "
            f"aggregated {','.join(record['aggregated'])}, uplink {record['uplink_payload_bytes']} B, "
            f"{record['seconds']['round']:.1f}s"
        )
    print(f"records: {result.out_dir / 'rounds.jsonl'}\nmodel: {result.out_dir / MODEL_INFO_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
