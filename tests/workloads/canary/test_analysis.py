"""The judgement on numbers alone: what rolls a candidate back, what promotes it, when nothing
is decided yet; and how a decision changes each server's split."""

from __future__ import annotations

import pytest

from workloads.canary.analysis import Decision, Thresholds, VersionStats, decide
from workloads.canary.controller import Decided, applied
from workloads.canary.targets import Split, resolve

T = Thresholds(
    window_seconds=300,
    min_requests=100,
    max_error_rate_increase=0.01,
    max_p99_ratio=1.5,
    min_agreement=0.9,
    max_accuracy_drop=0.02,
    min_labelled=50,
)
STABLE = VersionStats(requests=1000, errors=5, p99_seconds=0.010, correct=95, incorrect=5)
GOOD = VersionStats(requests=200, errors=1, p99_seconds=0.011, agree=190, disagree=10)


def test_nothing_is_decided_before_both_versions_answered_min_requests() -> None:
    verdict = decide(STABLE, VersionStats(requests=99, errors=99), T)
    assert verdict.decision is None and "waiting for 100 requests" in verdict.reason
    assert "requests candidate=99 stable=1000 (min 100)" in verdict.evidence


def test_a_candidate_within_every_bound_is_promoted() -> None:
    verdict = decide(STABLE, GOOD, T)
    assert verdict.decision is Decision.PROMOTED and "agreement" in verdict.reason


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (VersionStats(requests=200, errors=4, p99_seconds=0.01, agree=200), "error rate +0.0150 > 0.01"),
        (VersionStats(requests=200, p99_seconds=0.016, agree=200), "p99 ratio 1.60 > 1.5"),
        (VersionStats(requests=200, p99_seconds=0.01, agree=170, disagree=30), "agreement 0.8500 < 0.9"),
        (
            VersionStats(requests=200, p99_seconds=0.01, agree=200, correct=46, incorrect=4),
            "accuracy drop 0.0300 > 0.02",
        ),
    ],
)
def test_a_candidate_over_any_bound_is_rolled_back(candidate: VersionStats, reason: str) -> None:
    verdict = decide(STABLE, candidate, T)
    assert verdict.decision is Decision.ROLLED_BACK and verdict.reason == reason


def test_labels_outweigh_agreement_once_both_versions_have_enough() -> None:
    disagreeing_but_accurate = VersionStats(
        requests=200, p99_seconds=0.01, agree=10, disagree=90, correct=48, incorrect=2
    )
    assert decide(STABLE, disagreeing_but_accurate, T).decision is Decision.PROMOTED
    few_labels = VersionStats(requests=200, p99_seconds=0.01, agree=10, disagree=90, correct=4, incorrect=0)
    assert decide(STABLE, few_labels, T).decision is Decision.ROLLED_BACK


def test_without_labels_or_shadowed_rows_there_is_no_evidence_yet() -> None:
    verdict = decide(STABLE, VersionStats(requests=200, p99_seconds=0.01), T)
    assert verdict.decision is None and "waiting for labels or shadowed agreement" in verdict.reason


def test_a_decision_moves_each_split_that_still_serves_the_candidate() -> None:
    rolled_back = Decided("v2", Decision.ROLLED_BACK, "v1")
    promoted = Decided("v2", Decision.PROMOTED, "v1")
    assert applied(Split("v1", "v2", 10), rolled_back) == Split("v1")
    assert applied(Split("v2"), rolled_back) == Split("v1"), "a late replica that took it as stable"
    assert applied(Split("v2", "v3", 10), rolled_back) == Split("v1", "v3", 10), "a newer candidate stays"
    assert applied(Split("v1"), rolled_back) is None
    assert applied(Split("v1", "v2", 10), promoted) == Split("v2")
    assert applied(Split("v2"), promoted) is None
    assert applied(Split("v2", "v3", 10), promoted) is None, "a newer candidate is judged on its own"


@pytest.mark.anyio
async def test_targets_are_urls_or_every_address_of_a_name() -> None:
    assert await resolve("http://a:8080/, http://b:8080") == ["http://a:8080", "http://b:8080"]
    assert await resolve("dns+http://localhost:9000") == ["http://127.0.0.1:9000"]
    assert await resolve("dns+http://no-such-host.invalid:9000") == []
