"""The local run's report, with DP on (a stack with `federation.privacy.dp`): report.json,
report.md and the terminal summary state each region's spent ε, read from the rounds of a real
DP-SGD run on loopback (tests/conftest.py: `private_credit_run`), as `meridian local up` reads
its run's rounds."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from meridian.local.load import LoadResult
from meridian.local.report import RunFacts, print_summary, write_report
from tests.conftest import PRIVATE_REGIONS

pytestmark = pytest.mark.slow


def _facts(rounds: list[dict]) -> RunFacts:
    return RunFacts(
        stack="local",
        task="credit",
        strategy="fedavg",
        compression="int8",
        parameters=5122,
        rounds=rounds,
        localization={},
        loaded={},
        timings={},
        canary={"skipped": "no drill in this test"},
    )


def test_with_dp_on_the_report_states_each_regions_spent_epsilon(private_credit_run, tmp_path: Path, capsys) -> None:
    spent = private_credit_run.rounds[-1]["epsilon"]
    assert set(spent) == set(PRIVATE_REGIONS)
    summary = write_report(_facts(private_credit_run.rounds), LoadResult(), tmp_path)
    assert summary["epsilon_spent"] == spent
    assert json.loads((tmp_path / "report.json").read_text())["epsilon_spent"] == spent
    report = (tmp_path / "report.md").read_text()
    for region, epsilon in spent.items():
        assert f"- {region} spent privacy budget ε = {epsilon:.3f}" in report
    print_summary(summary)
    terminal = capsys.readouterr().out
    for region, epsilon in spent.items():
        assert f"{region} spent ε" in terminal and f"{epsilon:.3f}" in terminal


def test_a_region_missing_from_the_last_round_is_reported_with_what_it_spent_when_it_last_trained(
    private_credit_run, tmp_path: Path
) -> None:
    rounds = copy.deepcopy(private_credit_run.rounds)
    absent = PRIVATE_REGIONS[-1]
    del rounds[-1]["epsilon"][absent]  # as when that region missed the last round
    summary = write_report(_facts(rounds), LoadResult(), tmp_path)
    assert summary["epsilon_spent"][absent] == rounds[-2]["epsilon"][absent]
    assert summary["epsilon_spent"][PRIVATE_REGIONS[0]] == rounds[-1]["epsilon"][PRIVATE_REGIONS[0]]


def test_without_dp_the_report_claims_no_privacy_budget(private_credit_run, tmp_path: Path) -> None:
    rounds = [{**r, "epsilon": None} for r in private_credit_run.rounds]  # what a run without DP records
    summary = write_report(_facts(rounds), LoadResult(), tmp_path)
    assert summary["epsilon_spent"] is None
    assert "privacy budget" not in (tmp_path / "report.md").read_text()
