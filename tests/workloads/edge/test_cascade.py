"""The edge server: int8 model fetched over HTTP from the registry's CDN, confident answers
local, the rest escalated to a real regional server's escalation listener (mutual TLS with a
test CA, binary tensors both ways, the caller named); region down, slow region, circuit
breaker, LRU cache and metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from tests.workloads.serving.certificates import TestCa
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
    listening,
    make_registry,
    started,
)
from workloads import contract
from workloads.edge.cascade import CascadeAnswerer, CascadeConfig, CircuitBreaker, LruCache, upstream_tls
from workloads.registry import Variant
from workloads.registry.serve import RegistryServer
from workloads.registry.variants import quantize_int8
from workloads.serving.app import InferenceApp, Role
from workloads.serving.metrics import ServingMetrics
from workloads.serving.protocol import parse_infer_request
from workloads.serving.runner import Listener, server_tls

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
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("stack-ca"))


@dataclass
class Region:
    app: InferenceApp
    url: str  # its escalation listener


@pytest.fixture(scope="module")
def region(registry: Registry, ca: TestCa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """The regional server: public listener and escalation listener (mutual TLS, the stack's CA)."""
    app = app_for(registry, tmp_path_factory.mktemp("region-cache"))
    certificate = ca.server("region")
    listeners = (
        Listener(Role.PUBLIC, 0, None),
        Listener(Role.ESCALATION, 0, server_tls(certificate.cert, certificate.key, ca.cert)),
    )
    with listening(app, listeners) as urls:
        assert urls.escalation is not None
        yield Region(app, urls.escalation)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens once the probe socket is closed


def cascade_config(upstream: str, ca: TestCa | None = None, edge: str = "edge-nyc", **cascade: object) -> CascadeConfig:
    """The edge's cascade; with `ca`, escalating over mutual TLS with a client certificate for `edge`."""
    identity = ca.client(edge) if ca is not None else None
    return CascadeConfig(
        upstream_url=upstream,
        model_name=MODEL,
        upstream_ca_file=ca.cert if ca else None,
        upstream_cert_file=identity.cert if identity else None,
        upstream_key_file=identity.key if identity else None,
        **cascade,  # type: ignore[arg-type]
    )


async def edge_app(registry: Registry, cdn: str, cache: Path, config: CascadeConfig) -> InferenceApp:
    metrics = ServingMetrics()
    answerer = CascadeAnswerer(config, metrics)
    app = app_for(registry, cache, registry_url=cdn, variant="int8", metrics=metrics, answerer=answerer)
    await started(app)
    return app


@pytest.fixture
async def edge(registry: Registry, cdn: str, region: Region, ca: TestCa, tmp_path: Path) -> AsyncIterator[InferenceApp]:
    # A generous timeout: these tests judge what escalates, not how fast a busy machine answers
    # (each new connection to the region pays a TLS handshake).
    config = cascade_config(region.url, ca, confidence_threshold=0.95, timeout_s=10.0)
    app = await edge_app(registry, cdn, tmp_path, config)
    yield app
    await app.shutdown()


def local_confidence(registry: Registry, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(quantize_int8(registry.model(1))(torch.from_numpy(x)), dim=1).max(dim=1).values.numpy()


async def test_the_edge_serves_the_int8_artifact_fetched_over_http_and_revalidates_it(
    registry: Registry, cdn: str, tmp_path: Path
) -> None:
    first = await edge_app(registry, cdn, tmp_path, cascade_config(closed_port_url()))
    async with asgi_client(first) as client:
        artifact = (await client.get(f"/v2/models/{MODEL}")).json()["parameters"]["artifacts"]["v1"]
    await first.shutdown()
    assert artifact.startswith(f"{MODEL}/v1/test-region/int8 ") and " 0 bytes downloaded" not in artifact
    again = await edge_app(registry, cdn, tmp_path, cascade_config(closed_port_url()))
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
    config = cascade_config(closed_port_url(), confidence_threshold=1.0, attempts=2, breaker_failures=3)
    app = await edge_app(registry, cdn, tmp_path, config)
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
    config = cascade_config(f"http://127.0.0.1:{port}", confidence_threshold=1.0, timeout_s=0.1, attempts=2)
    app = await edge_app(registry, cdn, tmp_path, config)
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
    config = cascade_config(f"http://127.0.0.1:{port}", confidence_threshold=1.0, timeout_s=30.0, attempts=1)
    app = await edge_app(registry, cdn, tmp_path, config)
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


async def test_the_edge_escalates_over_mutual_tls_with_binary_tensors_both_ways_naming_the_caller(
    registry: Registry, cdn: str, region: Region, ca: TestCa, tmp_path: Path
) -> None:
    config = cascade_config(region.url, ca, edge="edge-lis", confidence_threshold=1.0, timeout_s=10.0)
    wire: list[tuple[str, str]] = []

    async def record(response: httpx.Response) -> None:
        wire.append((response.request.headers["content-type"], response.headers["content-type"]))

    metrics = ServingMetrics()
    client = httpx.AsyncClient(verify=upstream_tls(config) or False, event_hooks={"response": [record]})
    cascade = CascadeAnswerer(config, metrics, client)
    app = app_for(registry, tmp_path, registry_url=cdn, variant="int8", metrics=metrics, answerer=cascade)
    await started(app)
    served = app.router.pick(None)
    # What the public listener hands the cascade once it admitted caller "acme".
    request = replace(parse_infer_request(json.dumps(infer_body(TEST_X[:4])).encode(), {}, (64,)), caller="acme")
    probabilities, parameters = await cascade.answer(request, served)
    await app.shutdown()
    assert parameters["served_by"] == "region" and probabilities.shape == (4, 10)
    with torch.inference_mode():
        full = torch.softmax(registry.model(1)(torch.from_numpy(TEST_X[:4])), dim=1).numpy()
    np.testing.assert_allclose(probabilities, full, atol=1e-5)
    assert wire == [("application/octet-stream", "application/octet-stream")], "binary tensors both ways"
    counted = 'meridian_escalations_received_total{caller="acme",edge="edge-lis",model="meridian"} 1.0'
    assert counted in exposition(region.app.metrics)


def test_an_https_upstream_needs_the_ca_and_the_edge_certificate() -> None:
    with pytest.raises(ValueError, match=f"needs {contract.ENV_UPSTREAM_CA_FILE}, {contract.ENV_UPSTREAM_CERT_FILE}"):
        CascadeConfig(upstream_url="https://server.us-east-1:8443", model_name=MODEL)
