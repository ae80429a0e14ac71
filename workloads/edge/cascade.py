"""The edge's cascade: answer confident requests with the local (quantized) model, escalate the
rest to the region's server, and never fail a request because the region is away.

Escalation is bounded: a per-attempt timeout, a few attempts, and a circuit breaker that stops
calling a region that keeps failing (a half-open trial after a cool-down). When the region
cannot answer, the edge answers with its own result and says so in the response parameters
(`region_unavailable`, `fallback_reason`). An LRU cache answers repeated identical inputs.

The escalation goes to the region's escalation listener (workloads/contract.py): mutual TLS, the
edge presenting its client certificate of the stack's CA and verifying the region's against it,
with the binary tensor extension both ways (no JSON floats to print and parse), naming the
original caller in CALLER_HEADER. A plain http:// upstream is still accepted (tests, a region
on the same host) and logged as insecure.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from workloads import contract
from workloads.serving.metrics import ServingMetrics
from workloads.serving.protocol import (
    HEADER_LENGTH,
    PROBABILITIES,
    InferRequest,
    decode_infer_response,
    encode_binary_request,
)
from workloads.serving.versions import ServedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CascadeConfig:
    upstream_url: str  # the region's escalation listener, https://<server service>:ESCALATION_PORT
    model_name: str
    confidence_threshold: float = 0.8
    timeout_s: float = 0.25
    attempts: int = 2
    breaker_failures: int = 5
    breaker_cooldown_s: float = 5.0
    cache_entries: int = 4096
    upstream_ca_file: Path | None = None  # the CA the region's certificate must chain to
    upstream_cert_file: Path | None = None  # the edge's client certificate and key
    upstream_key_file: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.confidence_threshold <= 1:
            raise ValueError(f"confidence threshold must be within 0..1, got {self.confidence_threshold}")
        if self.attempts < 1 or self.breaker_failures < 1 or self.timeout_s <= 0:
            raise ValueError("attempts and breaker_failures must be >= 1, timeout_s > 0")
        scheme = httpx.URL(self.upstream_url).scheme
        if scheme not in ("https", "http"):
            raise ValueError(f"the upstream URL must be https:// (or http://), got {self.upstream_url!r}")
        files = {
            contract.ENV_UPSTREAM_CA_FILE: self.upstream_ca_file,
            contract.ENV_UPSTREAM_CERT_FILE: self.upstream_cert_file,
            contract.ENV_UPSTREAM_KEY_FILE: self.upstream_key_file,
        }
        missing = [env for env, path in files.items() if path is None]
        if scheme == "https" and missing:
            raise ValueError(f"escalating over mutual TLS to {self.upstream_url} needs {', '.join(missing)}")


def upstream_tls(config: CascadeConfig) -> ssl.SSLContext | None:
    """The edge's side of the escalation's mutual TLS (None for an http:// upstream): the
    region verified against the stack's CA, hostname included, the edge's certificate presented."""
    if httpx.URL(config.upstream_url).scheme != "https":
        log.warning("escalating to %s over plain HTTP: insecure, for tests only", config.upstream_url)
        return None
    assert config.upstream_ca_file and config.upstream_cert_file and config.upstream_key_file
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(config.upstream_ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.upstream_cert_file), str(config.upstream_key_file))
    return context


class RegionUnavailable(Exception):
    """The region did not answer in time, in the allowed attempts (or its circuit is open)."""


class CircuitBreaker:
    """Closed: calls go through. After `failures` consecutive failures it opens: calls are
    refused at once for `cooldown_s`, then one trial call is let through (half-open); its
    success closes the circuit, its failure opens it again."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self._failures_to_open = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        if self._opened_at is None:
            return True
        if self._trial_in_flight or self._clock() - self._opened_at < self._cooldown_s:
            return False
        self._trial_in_flight = True
        return True

    def succeeded(self) -> None:
        self._consecutive_failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def failed(self) -> None:
        self._consecutive_failures += 1
        if self._trial_in_flight or self._consecutive_failures >= self._failures_to_open:
            self._opened_at = self._clock()
        self._trial_in_flight = False


class LruCache:
    def __init__(self, capacity: int):
        self._capacity = capacity
        self._entries: OrderedDict[Any, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any) -> tuple[np.ndarray, dict[str, Any]] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Any, value: tuple[np.ndarray, dict[str, Any]]) -> None:
        if self._capacity < 1:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class CascadeAnswerer:
    """The edge's `Answerer` (see workloads.serving.app)."""

    def __init__(self, config: CascadeConfig, metrics: ServingMetrics, client: httpx.AsyncClient | None = None):
        self.config = config
        self._metrics = metrics
        self._infer_url = f"{config.upstream_url.rstrip('/')}/v2/models/{config.model_name}/infer"
        self._client = client or httpx.AsyncClient(
            verify=upstream_tls(config) or True,
            timeout=config.timeout_s,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        metrics.breaker_open.set_function(lambda: float(self.breaker.is_open))  # read at scrape time
        self.cache = LruCache(config.cache_entries)
        self._answered = 0
        self._answered_locally = 0

    async def close(self) -> None:
        await self._client.aclose()

    async def answer(self, request: InferRequest, served: ServedVersion) -> tuple[np.ndarray, dict[str, Any]]:
        key = (served.name, request.x.shape, request.x.tobytes())
        cached = self.cache.get(key)
        if cached is not None:
            self._metrics.cache_hits.inc()
            probabilities, parameters = cached
            return probabilities, self._count("cache", {**parameters, "cache_hit": True})
        local = await served.submit(request.x)
        confidence = float(local.max(axis=1).min())
        if confidence >= self.config.confidence_threshold:
            parameters = {"served_by": "edge", "confidence": confidence}
            self.cache.put(key, (local, parameters))
            return local, self._count("local", parameters)
        self._metrics.escalations.inc()
        try:
            remote, region_version = await self._ask_region(request.x, served.model.num_classes, request.caller)
        except RegionUnavailable as err:
            # Not cached: the next identical request should try the region again.
            return local, self._count(
                "fallback",
                {
                    "served_by": "edge",
                    "confidence": confidence,
                    "region_unavailable": True,
                    "fallback_reason": str(err),
                },
            )
        parameters = {"served_by": "region", "region_model_version": region_version, "edge_confidence": confidence}
        self.cache.put(key, (remote, parameters))
        return remote, self._count("region", parameters)

    def _count(self, source: str, parameters: dict[str, Any]) -> dict[str, Any]:
        self._metrics.edge_answers.labels(source).inc()
        self._answered += 1
        self._answered_locally += source != "region"
        self._metrics.edge_local_fraction.set(self._answered_locally / self._answered)
        return parameters

    async def _ask_region(self, x: np.ndarray, num_classes: int, caller: str | None) -> tuple[np.ndarray, str]:
        if not self.breaker.allow():
            raise RegionUnavailable(
                f"circuit open after {self.config.breaker_failures} consecutive failures; "
                f"retrying the region in {self.config.breaker_cooldown_s:g} s"
            )
        body, headers = encode_binary_request(x)
        if caller is not None:
            headers[contract.CALLER_HEADER] = caller
        reasons: list[str] = []
        for attempt in range(self.config.attempts):
            if attempt:
                await asyncio.sleep(0.01 * 2**attempt)  # brief backoff between attempts
            try:
                answer = await self._attempt(body, headers, (x.shape[0], num_classes))
            except _AttemptFailed as failure:
                self._metrics.upstream_errors.labels(failure.kind).inc()
                reasons.append(str(failure))
                if not failure.retry:
                    break
                continue
            self.breaker.succeeded()
            return answer
        self.breaker.failed()
        raise RegionUnavailable(f"region did not answer ({'; '.join(reasons)})")

    async def _attempt(self, body: bytes, headers: dict[str, str], shape: tuple[int, int]) -> tuple[np.ndarray, str]:
        """One call to the region: its probabilities and model version."""
        try:
            response = await self._client.post(self._infer_url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise _AttemptFailed("timeout", f"no answer within {self.config.timeout_s:g} s", retry=True) from None
        except httpx.HTTPError as err:
            raise _AttemptFailed("connection", type(err).__name__, retry=True) from None
        if response.status_code != 200:
            # 429 and 5xx may pass; any other status means the region refuses this request.
            retry = response.status_code == 429 or response.status_code >= 500
            raise _AttemptFailed(f"status_{response.status_code}", response.text[:200], retry=retry)
        try:
            result, probabilities = decode_infer_response(
                response.content, response.headers.get(HEADER_LENGTH), PROBABILITIES
            )
            if probabilities.shape != shape or probabilities.dtype != np.float32:
                raise ValueError(f"probabilities of shape {probabilities.shape}, expected {shape}")
            if not np.isfinite(probabilities).all():
                raise ValueError("non-finite probabilities")
        except (ValueError, KeyError, TypeError) as err:
            raise _AttemptFailed("bad_response", f"{type(err).__name__}: {err}", retry=False) from None
        return probabilities, str(result.get("model_version", ""))


class _AttemptFailed(Exception):
    def __init__(self, kind: str, detail: str, *, retry: bool):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind  # the metric label: timeout, connection, status_<code>, bad_response
        self.retry = retry
