"""A SuperNode's long-lived ClientApp process, for `flower-supernode --isolation process`.

Flower 1.42 starts every message's ClientApp as a fresh `flwr-clientapp` process (its
SuperExec launches one per task, in either isolation mode), and each imports flwr, torch and
the app again: seconds of every round, against well under a second of training. This process
takes the SuperExec's place beside the SuperNode: it imports all of that once, acquires the
node's ClientApp tasks from the SuperNode's Runtime API as the SuperExec does (with its
shared-secret authentication), and runs each with Flower's own `run_clientapp` in a child
forked from itself. Each message still gets a process of its own (nothing carries over
between messages but what the SuperNode keeps, the run's Context), started warm.

    python -m workloads.trainer.clientapp_runner --runtime-api-address 127.0.0.1:9094 \
        [--superexec-auth-secret-file F] [--poll-interval 0.05] [--health-port 9096]

The parent never starts a thread: a fork copies only the forking thread, so a lock held by
another one would stay held in the child forever. For the same reason its health port is
served by the task loop itself (a pending connection is accepted and closed once per poll):
if the loop stalls, the port stops answering.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import NoReturn

from flwr.proto.runtime_pb2 import AcquireTaskRequest
from flwr.supercore.auth import load_superexec_auth_secret
from flwr.supercore.constant import TaskType
from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
from flwr.supercore.protobuf.client import ProtobufClientInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime import run_clientapp as clientapp_process
from flwr.supernode.runtime.run_clientapp import run_clientapp

from workloads import contract
from workloads.trainer.object_pulls import retry_sooner

log = logging.getLogger("flwr").getChild("meridian")  # Flower's console handler, as its own processes log
_ACQUIRE_TASK = "/flwr.proto.Runtime/AcquireTask"  # the call SuperExec auth protects


def _runtime_client(address: str, secret: bytes | None) -> RuntimeHttpClient:
    """A client of the SuperNode's Runtime API as Flower's SuperExec builds it (plain HTTP:
    the API listens on the node's loopback only)."""
    interceptors: list[ProtobufClientInterceptor] = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
    if secret:
        interceptors.append(SuperExecAuthHttpInterceptor(master_secret=secret, protected_methods={_ACQUIRE_TASK}))
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=interceptors,
        retry_invoker=make_simple_http_retry_invoker(),
    )


def _run_task(address: str, token: str, closing: list[socket.socket]) -> NoReturn:
    """In the forked child: Flower's own ClientApp process body for one task, then exit
    without running the parent's exit handlers or touching its connections."""
    for sock in closing:
        sock.close()
    code = 1
    try:
        run_clientapp(runtime_api_address=address, token=token, insecure=True, parent_pid=os.getppid())
        code = 0
    except SystemExit as exit_:  # flwr_exit ends every task this way
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Runner:
    def __init__(self, address: str, secret: bytes | None, poll_interval: float, health: socket.socket | None):
        self.address, self.poll_interval, self.health = address, poll_interval, health
        self.client = _runtime_client(address, secret)
        self.children: set[int] = set()
        self.stopping = False

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("ClientApp runner %d acquiring tasks from %s", os.getpid(), self.address)
        while not self.stopping:
            self._answer_health()
            self._reap()
            answer = self.client.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
            if answer.HasField("task") and answer.token:
                self._fork(answer.task.task_id, answer.token)
                continue  # another message may be waiting: ask again at once
            time.sleep(self.poll_interval)
        for pid in self.children:
            os.kill(pid, signal.SIGTERM)
        while self.children:
            self._reap(block=True)
        self.client.close()
        return 0

    def _fork(self, task_id: int, token: str) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the child would print the parent's buffered output again
        pid = os.fork()
        if pid == 0:
            _run_task(self.address, token, [self.health] if self.health else [])
        self.children.add(pid)
        log.info("task %d: ClientApp process %d", task_id, pid)

    def _reap(self, block: bool = False) -> None:
        while self.children:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            self.children.discard(pid)
            if code := os.waitstatus_to_exitcode(status):
                log.warning("ClientApp process %d exited with %d", pid, code)

    def _answer_health(self) -> None:
        if self.health is None:
            return
        try:
            connection, _ = self.health.accept()
        except BlockingIOError:
            return
        connection.close()


def _health_socket(port: int) -> socket.socket:
    sock = socket.create_server(("0.0.0.0", port))
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.trainer.clientapp_runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API, host:port")
    parser.add_argument("--superexec-auth-secret-file", help="the secret the SuperNode was started with")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between task polls when idle")
    parser.add_argument("--health-port", type=int, help="a TCP port that answers while the task loop runs")
    parser.add_argument(
        "--preload",
        action="append",
        default=None,
        help=f"modules imported once, before any task (default: {contract.CLIENT_APP_MODULE})",
    )
    args = parser.parse_args(argv)
    if not 0.01 <= args.poll_interval <= 60:
        parser.error(f"--poll-interval must be between 0.01 and 60 seconds, not {args.poll_interval}")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # else one line per task poll
    for module in args.preload or [contract.CLIENT_APP_MODULE]:
        importlib.import_module(module)
    # A task comes before its message's contents: a warm process would wait Flower's 1 s for
    # them. Each retry asks the node's own Runtime API, on its loopback.
    retry_sooner(clientapp_process, "pull_and_inflate_object_from_tree", first_wait=0.02)
    secret = load_superexec_auth_secret(args.superexec_auth_secret_file)
    health = _health_socket(args.health_port) if args.health_port else None
    return Runner(args.runtime_api_address, secret, args.poll_interval, health).serve()


if __name__ == "__main__":
    sys.exit(main())
