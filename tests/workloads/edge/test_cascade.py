"""The edge server: int8 model fetched over HTTP from the registry's CDN, confident answers
local, the rest escalated to a real regional server; region down, slow region, circuit
breaker, LRU cache and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.workloads.serving.support import (
    INFER,
    MODEL,
    Registry,
    app_for,
    asgi_client,
    digits,
    exposition,
    free_port,
    infer_body,
    make_registry,
    serving,
    started,
)
from workloads.edge.cascade import CascadeAnswerer, CascadeConfig, CircuitBreaker, LruCache
from workloads.registry import Variant
from workloads.registry.serve import RegistryServer
from workloads.registry.variants import quantize_int8
from workloads.serving.app import InferenceApp
from workloads.serving.metrics import ServingMetrics

pytestmark = pytest.mark.anyio
X, _ = digits()
TEST_X = X[1400:1600]  # images the models were not trained on: some are uncertain


def test_circuit_breaker_opens_after_consecutive_failures_and_lets_one_trial_through_after_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown_s=5.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    breaker.succeeded()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failed()
    assert breaker.is_open and not breaker.allow()
    now[0] = 5.0
    assert breaker.allow() and not breaker.allow(), "one trial at a time when half-open"
    breaker.failed()
    assert not breaker.allow(), "a failed trial opens the circuit again"
    now[0] = 10.0
    assert breaker.allow()
    breaker.succeeded()
    assert not breaker.is_open and breaker.allow()


def test_lru_cache_evicts_the_least_recently_used_entry() -> None:
    cache = LruCache(2)
    cache.put("a", (np.zeros(1), {}))
    cache.put("b", (np.ones(1), {}))
    assert cache.get("a") is not None  # now "b" is the oldest
    cache.put("c", (np.ones(1), {}))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1}, [Variant.FP32, Variant.INT8])


@pytest.fixture(scope="module")
def cdn(registry: Registry) -> Iterator[str]:
    with RegistryServer(registry.root) as server:
        yield server.url


@pytest.fixture(scope="module")
def region(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(app_for(registry, tmp_path_factory.mktemp("region-cache"))) as url:
        yield url


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens once the probe socket is closed


async def edge_app(registry: Registry, cdn: str, cache: Path, upstream: str, **cascade: object) -> InferenceApp:
    metrics = ServingMetrics()
    config = CascadeConfig(upstream_url=upstream, model_name=MODEL, **cascade)  # type: ignore[arg-type]
    app = app_for(
        registry, cache, registry_url=cdn, variant="int8", metrics=metrics, answerer=CascadeAnswerer(config, metrics)
    )
    await started(app)
    return app


@pytest.fixture
async def edge(registry: Registry, cdn: str, region: str, tmp_path: Path) -> AsyncIterator[InferenceApp]:
    app = await edge_app(registry, cdn, tmp_path, region, confidence_threshold=0.95)
    yield app
    await app.shutdown()


def local_confidence(registry: Registry, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(quantize_int8(registry.model(1))(torch.from_numpy(x)), dim=1).max(dim=1).values.numpy()


async def test_the_edge_serves_the_int8_artifact_fetched_over_http_and_revalidates_it(
    registry: Registry, cdn: str, tmp_path: Path
) -> None:
    first = await edge_app(registry, cdn, tmp_path, closed_port_url())
    async with asgi_client(first) as client:
        artifact = (await client.get(f"/v2/models/{MODEL}")).json()["parameters"]["artifacts"]["v1"]
    await first.shutdown()
    assert artifact.startswith(f"{MODEL}/v1/test-region/int8 ") and " 0 bytes downloaded" not in artifact
    again = await edge_app(registry, cdn, tmp_path, closed_port_url())
    async with asgi_client(again) as client:
        artifact = (await client.get(f"/v2/models/{MODEL}")).json()["parameters"]["artifacts"]["v1"]
    await again.shutdown()
    assert artifact.endswith(" 0 bytes downloaded)"), "an unchanged artifact is not downloaded again"


async def test_confident_requests_stay_local_and_the_rest_escalate_to_the_region(
    edge: InferenceApp, registry: Registry
) -> None:
    confidence = local_confidence(registry, TEST_X)
    async with asgi_client(edge) as client:
        responses = await asyncio.gather(
            *(client.post(INFER, json=infer_body(TEST_X[i : i + 1])) for i in range(len(TEST_X)))
        )
    metrics = exposition(edge.metrics)
    served_by = np.array([r.json()["parameters"]["served_by"] for r in responses])
    assert all(r.status_code == 200 for r in responses)
    np.testing.assert_array_equal(served_by == "edge", confidence >= 0.95)
    escalated = int((served_by == "region").sum())
    assert 0 < escalated < len(TEST_X)
    with torch.inference_mode():
        full = registry.model(1)(torch.from_numpy(TEST_X)).argmax(1).numpy()
    labels = np.array([r.json()["outputs"][1]["data"][0] for r in responses])
    np.testing.assert_array_equal(labels[served_by == "region"], full[served_by == "region"])
    assert f"meridian_edge_escalations_total {float(escalated)}" in metrics
    assert f'meridian_edge_answers_total{{source="region"}} {float(escalated)}' in metrics
    assert f"meridian_edge_local_fraction {1 - escalated / len(TEST_X)}" in metrics


async def test_repeated_identical_inputs_are_answered_from_the_cache(edge: InferenceApp) -> None:
    async with asgi_client(edge) as client:
        first = (await client.post(INFER, json=infer_body(TEST_X[:1]))).json()
        second = (await client.post(INFER, json=infer_body(TEST_X[:1]))).json()
    metrics = exposition(edge.metrics)
    assert "cache_hit" not in first["parameters"] and second["parameters"]["cache_hit"] is True
    assert second["outputs"] == first["outputs"]
    assert "meridian_edge_cache_hits_total 1.0" in metrics


async def test_region_down_the_edge_answers_itself_says_so_and_the_breaker_stops_calling(
    registry: Registry, cdn: str, tmp_path: Path
) -> None:
    app = await edge_app(
        registry, cdn, tmp_path, closed_port_url(), confidence_threshold=1.0, attempts=2, breaker_failures=3
    )
    closed = exposition(app.metrics)
    async with asgi_client(app) as client:
        responses = [(await client.post(INFER, json=infer_body(TEST_X[i : i + 1]))) for i in range(6)]
        repeat = await client.post(INFER, json=infer_body(TEST_X[:1]))
    metrics = exposition(app.metrics)
    await app.shutdown()
    assert "meridian_edge_breaker_open 0.0" in closed and "meridian_edge_breaker_open 1.0" in metrics
    assert all(r.status_code == 200 for r in responses)
    parameters = [r.json()["parameters"] for r in responses]
    assert all(p["served_by"] == "edge" and p["region_unavailable"] is True for p in parameters)
    assert "connection" in parameters[0]["fallback_reason"]
    assert all("circuit open" in p["fallback_reason"] for p in parameters[3:])
    assert 'meridian_edge_upstream_errors_total{reason="connection"} 6.0' in metrics, (
        "3 escalations x 2 attempts, then none"
    )
    assert 'meridian_edge_answers_total{source="fallback"} 7.0' in metrics
    assert "cache_hit" not in repeat.json()["parameters"], "fallback answers are not cached"


async def test_a_region_that_hangs_costs_at_most_the_timeout_per_attempt(
    registry: Registry, cdn: str, tmp_path: Path
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = await edge_app(
        registry, cdn, tmp_path, f"http://127.0.0.1:{port}", confidence_threshold=1.0, timeout_s=0.1, attempts=2
    )
    async with asgi_client(app) as client:
        started_at = asyncio.get_running_loop().time()
        response = await client.post(INFER, json=infer_body(TEST_X[:1]))
        elapsed = asyncio.get_running_loop().time() - started_at
    metrics = exposition(app.metrics)
    await app.shutdown()
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()
    assert response.status_code == 200 and "timeout" in response.json()["parameters"]["fallback_reason"]
    assert 0.2 <= elapsed < 1.0
    assert 'meridian_edge_upstream_errors_total{reason="timeout"} 2.0' in metrics


async def test_requests_waiting_on_a_slow_region_count_as_in_flight(
    registry: Registry, cdn: str, tmp_path: Path
) -> None:
    accepted: list[asyncio.StreamWriter] = []
    all_held = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # answers nothing until the test hangs up
        if len(accepted) == 4:
            all_held.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = await edge_app(
        registry, cdn, tmp_path, f"http://127.0.0.1:{port}", confidence_threshold=1.0, timeout_s=30.0, attempts=1
    )
    in_flight = f'meridian_inference_in_flight{{model="{MODEL}"}}'
    async with asgi_client(app) as client:
        requests = [asyncio.create_task(client.post(INFER, json=infer_body(TEST_X[i : i + 1]))) for i in range(4)]
        await all_held.wait()
        during = exposition(app.metrics)
        for writer in accepted:
            writer.close()  # the region hangs up: each request falls back to the edge's answer
        responses = await asyncio.gather(*requests)
    after = exposition(app.metrics)
    await app.shutdown()
    server.close()
    await server.wait_closed()
    assert all(r.status_code == 200 and r.json()["parameters"]["region_unavailable"] for r in responses)
    assert f"{in_flight} 4.0" in during and f"{in_flight} 0.0" in after
