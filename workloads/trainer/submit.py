"""Submit the federated run once, and alone: what the home region's run Job runs instead of a
bare `flwr run` (components/k8s/federated_run.py).

    python -m workloads.trainer.submit --connection meridian --app /app/workloads/trainer \
        --run-key 3f2a9c01de --run-config 'rounds=5 strategy="fedavg" ...'

The Job is keyed by what the run trains on, and a new key is a new Job. Two things a bare
`flwr run` gets wrong:
- an earlier run may still be going in the SuperLink; two runs would compete for the same
  SuperNodes. So every run still pending, starting or running that does not carry this run key
  is stopped first.
- the Job retries (restartPolicy OnFailure): a retry after a successful submit must not submit
  twice. So the run carries its key in its run config (`run-key`, a trainer setting), and
  nothing is submitted while a run with this key is still active, or when the newest run
  carries it (an earlier attempt submitted it, whatever its status now). Only the newest
  finished run counts: going back to an earlier key (A, then B, then A again) is a new Job and
  trains again.

The runs' configs are read through Flower's own Control API client: `flwr ls --format json`
shows ids and statuses but not the run config (flwr 1.42, flwr/cli/ls.py `_to_json`). Stopping
uses the same client; submitting is `flwr run`, which builds the app bundle.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click
from flwr.cli.flower_config import read_superlink_connection
from flwr.cli.utils import flwr_cli_exc_handler, init_http_client_from_connection
from flwr.common.config import parse_config_args
from flwr.common.constant import Status
from flwr.common.serde import run_from_proto
from flwr.proto.control_pb2 import ListRunsRequest, StopRunRequest
from flwr.supercore.control import ControlHttpClient

RUN_KEY = "run-key"  # the trainer's run config key (settings.py) that tags a run with its Job's key
ACTIVE = (Status.PENDING, Status.STARTING, Status.RUNNING)
_PAGE = 100  # runs per ListRuns call (the SuperLink returns 20 when no limit is given)
_FLWR = Path(sys.executable).parent / "flwr"  # the CLI of this environment (the image's venv)
_SUBMIT_TIMEOUT_S = 300  # `flwr run` builds and uploads the app bundle (< 10 MB)
_A = TypeVar("_A")
_T = TypeVar("_T")


class SubmitError(RuntimeError):
    """A step against the SuperLink failed; the message names the connection and the run."""


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    status: str  # pending, starting, running, finished
    sub_status: str  # completed, failed, stopped once finished
    run_key: str  # "" for a run submitted without one
    pending_at: datetime  # when it was submitted

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def __str__(self) -> str:
        status = f"{self.status}:{self.sub_status}" if self.sub_status else self.status
        return f"run {self.run_id} ({status}, run key {self.run_key or 'none'})"


class SuperLink:
    """The SuperLink behind one `flwr` connection of `$FLWR_HOME/config.toml`."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self._client: ControlHttpClient | None = None

    def __enter__(self) -> SuperLink:
        connection = self._call("reading the connection", read_superlink_connection, self.connection)
        self._client = self._call("connecting", init_http_client_from_connection, connection)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    def _call(self, what: str, call: Callable[[_A], _T], arg: _A) -> _T:
        """One Control API call; if it fails, Flower's own message with the connection and the step."""
        try:
            with flwr_cli_exc_handler():
                return call(arg)
        except click.ClickException as err:
            raise SubmitError(f"{self.connection}: {what} failed: {err.message}") from None

    @property
    def client(self) -> ControlHttpClient:
        assert self._client is not None, "use SuperLink in a `with` block"
        return self._client

    def runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        found: dict[int, RunInfo] = {}
        while True:
            request = ListRunsRequest(limit=_PAGE, skip=len(found))
            page = self._call("listing runs", self.client.ListRuns, request).run_dict.values()
            for proto in page:
                run = run_from_proto(proto)
                found[run.run_id] = RunInfo(
                    run.run_id,
                    run.status.status,
                    run.status.sub_status,
                    str(run.override_config.get(RUN_KEY, "")),
                    datetime.fromisoformat(run.pending_at),
                )
            if len(page) < _PAGE:
                return sorted(found.values(), key=lambda r: r.pending_at, reverse=True)

    def stop(self, run: RunInfo) -> None:
        # A run that finishes between the listing and here makes this fail; the Job's retry
        # then lists it as finished.
        self._call(f"stopping {run}", self.client.StopRun, StopRunRequest(run_id=run.run_id))

    def submit(self, app: Path, run_config: str, run_key: str) -> int:
        """`flwr run`: the app bundle built from `app`, its run config tagged with the key.
        If it times out, the run may still have been submitted: the Job's retry finds it."""
        command = [
            str(_FLWR), "run", str(app), self.connection,
            "--run-config", run_config,
            "--run-config", f"{RUN_KEY}={json.dumps(run_key)}",
            "--format", "json",
        ]  # fmt: skip
        failed = f"{self.connection}: submitting the run with run key {run_key} failed"
        try:
            # check=False: a failure is reported from Flower's JSON answer
            result = subprocess.run(command, capture_output=True, text=True, timeout=_SUBMIT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise SubmitError(f"{failed}: `flwr run` did not answer within {_SUBMIT_TIMEOUT_S}s") from None
        try:
            answer = json.loads(result.stdout)
        except json.JSONDecodeError:
            answer = {}
        if result.returncode != 0 or not answer.get("success"):
            detail = answer.get("error-message") or (result.stdout + result.stderr).strip()
            raise SubmitError(f"{failed}: {detail}")
        return int(answer["run-id"])


def submit_alone(superlink: SuperLink, app: Path, run_config: str, run_key: str, log: Callable[[str], None]) -> None:
    """Stop every active run of another key, then submit, unless a run with this key is still
    active or is the newest."""
    runs = superlink.runs()
    for run in runs:
        if run.active and run.run_key != run_key:
            log(f"{superlink.connection}: stopping {run}")
            superlink.stop(run)
    submitted = next((r for r in runs if r.run_key == run_key and (r.active or r is runs[0])), None)
    if submitted is not None:
        log(f"{superlink.connection}: {submitted} was submitted before; nothing submitted")
        return
    run_id = superlink.submit(app, run_config, run_key)
    log(f"{superlink.connection}: submitted run {run_id} with run key {run_key}")


def _checked_run_config(text: str) -> str:
    """The run config as `flwr run` takes it, parsed here first so a bad one fails before anything is stopped."""
    try:
        values = parse_config_args([text])
    except (click.ClickException, ValueError) as err:
        message = err.message if isinstance(err, click.ClickException) else str(err)
        raise SubmitError(f"--run-config: {message}") from None
    if RUN_KEY in values:
        raise SubmitError(f"--run-config: {RUN_KEY} is set by --run-key")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.trainer.submit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connection", required=True, help="the SuperLink connection in $FLWR_HOME/config.toml")
    parser.add_argument("--app", type=Path, required=True, help="the Flower App directory (the trainer's)")
    parser.add_argument("--run-key", required=True, help="what the run trains on, hashed (letters, digits, .-_)")
    parser.add_argument("--run-config", default="", help="space-separated key=value (TOML values)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,63}", args.run_key):
        parser.error(f"--run-key {args.run_key!r}: 1-63 letters, digits, '.', '-' or '_'")
    try:
        run_config = _checked_run_config(args.run_config)
        with SuperLink(args.connection) as superlink:
            submit_alone(superlink, args.app, run_config, args.run_key, lambda line: print(f"submit: {line}"))
    except SubmitError as err:
        print(f"submit: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
