"""Per-caller limits: a token bucket per caller, refilled at its rate, holding its burst; past
it, 429 with Retry-After (whole seconds until a token is back) while other callers go on; limits
from ENV_RATE_LIMITS with per-caller overrides; memory bounded however many callers come.

The buckets on a clock moved by hand; then the app in-process with API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workloads.serving.credentials import write_api_keys
from tests.workloads.serving.support import (
    INFER,
    MODEL,
    Registry,
    app_for,
    asgi_client,
    digits,
    exposition,
    infer_body,
    make_registry,
    started,
)
from workloads import contract
from workloads.serving.ratelimit import Limit, RateLimits, TokenBuckets

X, _ = digits()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def buckets(default: Limit, callers: dict[str, Limit] | None = None, **kwargs: int) -> tuple[TokenBuckets, Clock]:
    clock = Clock()
    return TokenBuckets(RateLimits(default, callers or {}), clock=clock, **kwargs), clock


def test_a_caller_gets_its_burst_then_waits_for_the_refill() -> None:
    limits, clock = buckets(Limit(requests_per_second=2, burst=3))
    assert [limits.take("alice") for _ in range(3)] == [None, None, None]
    assert limits.take("alice") == 1  # one token at 2/s: 0.5 s, rounded up to a whole second
    clock.now += 0.5
    assert limits.take("alice") is None
    assert limits.take("alice") == 1
    clock.now += 60  # refilled to the burst, never past it
    assert [limits.take("alice") for _ in range(4)] == [None, None, None, 1]


def test_retry_after_is_the_ceiling_of_the_deficit_time() -> None:
    limits, clock = buckets(Limit(requests_per_second=0.1, burst=1))
    assert limits.take("alice") is None
    assert limits.take("alice") == 10
    clock.now += 2.5
    assert limits.take("alice") == 8  # 7.5 s to go
    clock.now += 7.4
    assert limits.take("alice") == 1  # 0.1 s to go: still a whole second


def test_callers_have_their_own_buckets_and_overrides() -> None:
    limits, _ = buckets(Limit(1, 1), {"batch-job": Limit(1, 5)})
    assert limits.take("alice") is None and limits.take("alice") == 1
    assert limits.take("bob") is None  # alice's empty bucket is hers alone
    assert [limits.take("batch-job") for _ in range(6)] == [None] * 5 + [1]


def test_memory_stays_bounded_however_many_callers_come() -> None:
    limits, clock = buckets(Limit(1, 2), max_buckets=3)
    for i in range(100):
        assert limits.take(f"caller-{i}") is None
        clock.now += 0.3
        assert len(limits) <= 3


def test_idle_full_buckets_go_first_and_an_empty_one_is_kept() -> None:
    limits, clock = buckets(Limit(1, 1), {"greedy": Limit(0.001, 1)}, max_buckets=2)
    assert limits.take("greedy") is None and limits.take("greedy") is not None
    assert limits.take("idle") is None
    clock.now += 10  # idle's bucket is full again; greedy's is still empty
    assert limits.take("newcomer") is None  # over the bound: idle's full bucket is dropped
    assert limits.take("greedy") is not None  # greedy was not forgiven by a fresh bucket
    assert len(limits) == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not JSON"),
        ('{"default": {"requestsPerSecond": 0, "burst": 1}}', "default.requestsPerSecond: expected a positive number"),
        ('{"default": {"requestsPerSecond": 1, "burst": 0.5}}', "default.burst: expected an integer >= 1"),
        ('{"callers": {"alice": {"rps": 1}}}', "callers.alice: expected"),
        ('{"default": {}, "extra": 1}', "expected {"),
        ('{"callers": []}', "callers: expected an object"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("{", r"\{")):
        RateLimits.parse(raw)


def test_the_stack_configs_json_parses_with_its_defaults() -> None:
    parsed = RateLimits.parse(
        '{"default": {"requestsPerSecond": 50, "burst": 100}, "callers": {"alice": {"burst": 7}}}'
    )
    assert parsed.default == Limit(50, 100)
    assert parsed.of("alice") == Limit(100, 7)  # the stack config's RateLimit defaults fill the rest
    assert parsed.of("bob") == parsed.default


# ---- in the app ------------------------------------------------------------------------------

KEYS = {"alice": "alice-secret-0123456789", "bob": "bob-secret-0123456789"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1})


@pytest.mark.anyio
async def test_a_caller_past_its_burst_gets_429_with_retry_after_while_another_goes_on(
    registry: Registry, tmp_path: Path
) -> None:
    app = app_for(
        registry,
        tmp_path,
        api_keys_file=write_api_keys(tmp_path / "keys.json", KEYS),
        # A refill too slow to matter during the test: alice's burst is all she gets.
        rate_limits=RateLimits(Limit(0.01, 3), {"bob": Limit(0.01, 10)}),
    )
    await started(app)

    def key(key_id: str) -> dict[str, str]:
        return {contract.API_KEY_HEADER: f"{key_id}.{KEYS[key_id]}"}

    async with asgi_client(app) as client:
        for _ in range(3):
            assert (await client.post(INFER, json=infer_body(X[:1]), headers=key("alice"))).status_code == 200
        throttled = await client.post(INFER, json=infer_body(X[:1]), headers=key("alice"))
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 100  # ~100 s at 0.01/s
        message = throttled.json()["error"]
        assert "caller 'alice' is over its rate limit of 0.01 requests/s (burst 3)" in message
        assert "queue full" not in message
        # The limit covers every route but health, and bob's bucket is his own.
        assert (await client.get(f"/v2/models/{MODEL}", headers=key("alice"))).status_code == 429
        assert (await client.get(contract.READINESS_PATH)).status_code == 200
        for _ in range(5):
            assert (await client.post(INFER, json=infer_body(X[:1]), headers=key("bob"))).status_code == 200
    await app.shutdown()
    scraped = exposition(app.metrics)
    assert 'meridian_inference_caller_throttled_total{caller="alice"} 2.0' in scraped
    assert 'meridian_inference_caller_requests_total{caller="alice",status="429"} 2.0' in scraped
    assert 'meridian_inference_caller_requests_total{caller="alice",status="200"} 3.0' in scraped
    assert 'meridian_inference_caller_requests_total{caller="bob",status="200"} 5.0' in scraped
    assert 'meridian_inference_caller_throttled_total{caller="bob"}' not in scraped
