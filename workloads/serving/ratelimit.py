"""Per-caller limits: one token bucket per caller id (an API key id or a token's `sub`).

A caller's bucket holds at most `burst` requests and refills at `requests_per_second`; a request
takes one token, and a caller with none left is answered 429 with Retry-After (the whole seconds
until a token is back), before any model work. This is the caller's own limit, not the server's
capacity: the queue-full 429 (batching.QueueFull) says the server is busy for everyone.

Held per replica, in memory (the stack's `auth.rateLimit` says so): a caller spread over n
replicas by the load balancer gets up to n times its limit. A shared store (Redis) would make the
limit exact at the price of a network round trip per request, about the cost of the request
itself here (bench/serving.py). The limits come from ENV_RATE_LIMITS (`RateLimits.parse`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# Buckets kept at most. A full bucket is the same as no bucket (a new one starts full), so idle
# callers' buckets are dropped first; past that, the least recently used (only with more active
# callers than this, each then gets a fresh bucket: memory stays bounded either way).
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Limit:
    requests_per_second: float
    burst: int

    def __str__(self) -> str:
        return f"{self.requests_per_second:g} requests/s (burst {self.burst})"


@dataclass(frozen=True)
class RateLimits:
    """ENV_RATE_LIMITS: {"default": {"requestsPerSecond": r, "burst": b}, "callers": {id: {...}}}
    (the stack's `auth.rateLimit` and `auth.callers`, components/config.py RateLimit)."""

    default: Limit
    callers: Mapping[str, Limit] = field(default_factory=dict)

    def of(self, caller: str) -> Limit:
        return self.callers.get(caller, self.default)

    @classmethod
    def parse(cls, raw: str) -> RateLimits:
        """Parse the JSON; a ValueError names the field that is wrong."""
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise ValueError(f"not JSON: {err}") from None
        if not isinstance(value, dict) or set(value) - {"default", "callers"}:
            raise ValueError('expected {"default": {...}, "callers": {"<caller id>": {...}}}')
        callers = value.get("callers", {})
        if not isinstance(callers, dict):
            raise ValueError("callers: expected an object of caller id -> limit")
        return cls(
            _limit(value.get("default", {}), "default"),
            {str(caller): _limit(limit, f"callers.{caller}") for caller, limit in callers.items()},
        )


def _limit(value: Any, where: str) -> Limit:
    if not isinstance(value, dict) or set(value) - {"requestsPerSecond", "burst"}:
        raise ValueError(f'{where}: expected {{"requestsPerSecond": <number>, "burst": <integer>}}')
    # The defaults of the stack config's RateLimit.
    rate, burst = value.get("requestsPerSecond", 100), value.get("burst", 200)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise ValueError(f"{where}.requestsPerSecond: expected a positive number, got {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"{where}.burst: expected an integer >= 1, got {burst!r}")
    return Limit(float(rate), burst)


class _Bucket:
    __slots__ = ("limit", "tokens", "updated")

    def __init__(self, limit: Limit, now: float):
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.limit.burst, self.tokens + (now - self.updated) * self.limit.requests_per_second)
        self.updated = now

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.limit.requests_per_second >= self.limit.burst


class TokenBuckets:
    """One bucket per caller. `clock` is monotonic seconds (injectable: tests move time by hand)."""

    def __init__(
        self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS
    ):
        self.limits = limits
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, caller: str) -> int | None:
        """Take one token of `caller`'s bucket: None when it had one, else the whole seconds
        (at least 1) until it will have one again: the Retry-After."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._evict(now)
            bucket = self._buckets[caller] = _Bucket(self.limits.of(caller), now)
        else:
            bucket.refill(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / bucket.limit.requests_per_second))

    def _evict(self, now: float) -> None:
        """Drop the full buckets (idle callers: nothing is lost); if none is full, the least
        recently used one."""
        full = [caller for caller, bucket in self._buckets.items() if bucket.full(now)]
        for caller in full:
            del self._buckets[caller]
        if not full:
            del self._buckets[min(self._buckets, key=lambda caller: self._buckets[caller].updated)]
