"""The run Job's command against a real SuperLink (loopback, TLS, two authenticated SuperNodes):
a new run key stops the run still going and submits its own; a retry submits nothing; going
back to an earlier key trains again.

The first run holds the SuperNodes without training (min-regions 3 of 2 connected: its
ServerApp waits), so only the second run, one round, costs training time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from workloads.tasks.__main__ import prepare_data
from workloads.trainer.launch import _BIN, APP_DIR, CONNECTION, LocalFederation, Node
from workloads.trainer.submit import RUN_KEY

pytestmark = pytest.mark.slow

REGIONS = ["eu", "us"]
WAITING = "rounds=1 min-regions=3 node-wait-timeout=600.0"  # never starts a round with two nodes
ONE_ROUND = "rounds=1 min-regions=2 local-epochs=1"


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    work = tmp_path_factory.mktemp("submit")
    prepare_data("digits", REGIONS, work / "data", seed=0, alpha=0.5)
    with LocalFederation(work, [Node(region, work / "data" / region) for region in REGIONS]) as running:
        yield running


def _submit(federation: LocalFederation, run_key: str, run_config: str, out: str) -> subprocess.CompletedProcess[str]:
    """The Job's command, as the Job runs it."""
    return subprocess.run(
        [
            sys.executable, "-m", "workloads.trainer.submit",
            "--connection", CONNECTION, "--app", str(APP_DIR),
            "--run-key", run_key, "--run-config", f'{run_config} out-dir="{federation.workdir / out}"',
        ],
        env=federation.env,
        cwd=federation.workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip


def _runs(federation: LocalFederation) -> dict[int, str]:
    """Run id -> status, as `flwr ls` lists them."""
    listed = subprocess.run(
        [str(_BIN / "flwr"), "ls", CONNECTION, "--format", "json", "--limit", "1000"],
        env=federation.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {int(run["run-id"]): run["status"] for run in json.loads(listed.stdout)["runs"]}


def _stopped(runs: dict[int, str]) -> set[int]:
    return {run_id for run_id, status in runs.items() if status == "finished:stopped"}


def _submitted(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stdout + result.stderr
    return int(result.stdout.split("submitted run ")[1].split()[0])


def _wait_for(federation: LocalFederation, run_id: int, statuses: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (status := _runs(federation)[run_id]) not in statuses and time.monotonic() < deadline:
        time.sleep(1.0)
    return status


def test_a_new_run_key_stops_the_run_still_going_and_a_retry_submits_nothing(federation):
    first = _submitted(_submit(federation, "key-a", WAITING, "a"))
    assert _wait_for(federation, first, {"running"}, timeout=60) == "running"

    result = _submit(federation, "key-b", ONE_ROUND, "b")
    second = _submitted(result)
    assert f"stopping run {first} (running, run key key-a)" in result.stdout
    assert _runs(federation)[first] == "finished:stopped"

    retried = _submit(federation, "key-b", ONE_ROUND, "b")  # the Job's retry, the run still going
    assert retried.returncode == 0, retried.stderr
    assert "nothing submitted" in retried.stdout and "stopping" not in retried.stdout
    assert set(_runs(federation)) == {first, second}

    # the second run has the SuperNodes to itself and trains to the end
    assert _wait_for(federation, second, {"finished:completed", "finished:failed"}, timeout=180) == (
        "finished:completed"
    )
    retried = _submit(federation, "key-b", ONE_ROUND, "b")  # a retry after the run finished
    assert retried.returncode == 0 and "nothing submitted" in retried.stdout, retried.stdout + retried.stderr
    assert set(_runs(federation)) == {first, second}

    # going back to the earlier key is a new Job: it trains again, though a run of that key exists
    again = _submitted(_submit(federation, "key-a", WAITING, "a-again"))
    assert set(_runs(federation)) == {first, second, again}


def test_bad_input_fails_before_anything_is_stopped(federation):
    before = _runs(federation)
    result = _submit(federation, "key-c", f'{RUN_KEY}="forged"', "c")
    assert result.returncode == 1
    assert f"--run-config: {RUN_KEY} is set by --run-key" in result.stderr
    after = _runs(federation)
    assert set(after) == set(before)  # nothing submitted ...
    assert _stopped(after) == _stopped(before)  # ... and nothing stopped


def test_an_unknown_connection_is_named_in_the_error(federation):
    result = subprocess.run(
        [sys.executable, "-m", "workloads.trainer.submit", "--connection", "nowhere", "--app", str(APP_DIR),
         "--run-key", "key-d"],
        env=federation.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("submit: nowhere: reading the connection failed:"), result.stderr
    assert "Traceback" not in result.stderr
