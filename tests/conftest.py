"""Fixtures shared across the test tree's halves.

`private_credit_run` is one real DP-SGD run on Flower's Deployment Engine, shared by the
trainer's loopback tests (tests/workloads/trainer) and the local stack's report tests
(tests/meridian/local), which read its rounds as the local stack does: a run takes a minute or
two, so it is made once per session. Imports are inside the fixture: the Pulumi side's
environment (.venv) has no torch or Flower and never asks for it.
"""

from __future__ import annotations

from typing import Any

import pytest

PRIVATE_REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-1"]
PRIVATE_EPSILON = 8.0
PRIVATE_ROUNDS = 2


@pytest.fixture(scope="session")
def private_credit_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`credit` across three SuperNodes and a SuperLink on loopback (TLS, SuperNode auth), with
    the run config a stack with `federation.privacy.dp: {epsilon: 8}` gives the trainer: every
    region trains with DP-SGD. Returns the launcher's RunResult (rounds read from rounds.jsonl)."""
    from components.config import Privacy, RecordLevelDp, load_stack
    from workloads.tasks.__main__ import prepare_data
    from workloads.trainer.launch import LocalFederation, Node

    work = tmp_path_factory.mktemp("private-credit")
    prepare_data("credit", PRIVATE_REGIONS, work / "data", seed=0, alpha=0.5)
    federation = load_stack("local").federation.model_copy(
        update={
            "task": "credit",
            "rounds": PRIVATE_ROUNDS,
            "privacy": Privacy(dp=RecordLevelDp(epsilon=PRIVATE_EPSILON)),
        }
    )
    with LocalFederation(work / "federation", [Node(r, work / "data" / r) for r in PRIVATE_REGIONS]) as running:
        # A round waits as long as its regions take: on a loaded machine a ClientApp process can
        # take minutes to start, and a region dropped at the stack's 120 s is not what is tested.
        run_config = {**federation.run_config(), "round-timeout": 900.0}
        return running.run(run_config, timeout=300.0 + 900.0 * PRIVATE_ROUNDS, run_name="private")
