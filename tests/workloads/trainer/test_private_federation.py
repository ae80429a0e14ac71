"""DP-SGD on Flower's Deployment Engine, for real: a SuperLink and three SuperNodes on loopback
(TLS, SuperNode auth) train `credit` with `federation.privacy.dp: {epsilon: 8}`, and the run's
records say, round by round, how much of its budget each region has spent.

The run is the session's `private_credit_run` (tests/conftest.py), shared with the local
stack's report tests.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import PRIVATE_EPSILON, PRIVATE_REGIONS, PRIVATE_ROUNDS
from workloads.trainer.privacy import EPSILON_TOLERANCE

pytestmark = pytest.mark.slow


def _rounds_file(run) -> list[dict]:
    lines = (run.out_dir / "rounds.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_rounds_jsonl_carries_each_regions_spent_epsilon_rising_round_by_round_within_the_budget(private_credit_run):
    records = _rounds_file(private_credit_run)
    assert [r["round"] for r in records] == list(range(1, PRIVATE_ROUNDS + 1))
    for region in PRIVATE_REGIONS:
        spent = [r["epsilon"][region] for r in records]
        assert spent[0] > 0 and spent == sorted(set(spent)), spent  # every round spends more
        assert spent[-1] <= PRIVATE_EPSILON
        # The noise was calibrated for exactly these rounds: the last one ends at the budget.
        assert spent[-1] >= PRIVATE_EPSILON - EPSILON_TOLERANCE
        dp = records[-1]["regions"][region]["dp"]
        assert dp["target_epsilon"] == PRIVATE_EPSILON and dp["noise_multiplier"] > 0


def test_the_published_model_states_what_each_region_spent(private_credit_run):
    last = _rounds_file(private_credit_run)[-1]
    privacy = private_credit_run.model_info["privacy"]
    assert privacy["epsilon_spent"] == last["epsilon"]
    assert set(privacy["epsilon_spent"]) == set(PRIVATE_REGIONS)
