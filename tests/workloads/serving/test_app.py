"""The V2 app in-process (ASGI): routes, every error path, batching, flow control, versions,
hot reload and metrics, against real signed artifacts in a file:// registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.workloads.serving.support import (
    ADMIN_AUTH,
    ADMIN_TOKEN,
    INFER,
    LOAD,
    MODEL,
    Registry,
    app_for,
    asgi_client,
    digits,
    exposition,
    infer_body,
    make_registry,
    metrics_listener,
    serving,
    started,
)
from workloads.contract import METRICS_PATH, VERSION_HEADER
from workloads.serving.app import Role
from workloads.serving.protocol import InferRequest
from workloads.serving.versions import ServedVersion

pytestmark = pytest.mark.anyio
X, Y = digits()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    registry = make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1, "v2": 2, "v3": 3})
    # v3 tampered after signing: one weight byte flipped.
    weights = registry.artifact_dir("v3") / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    return registry


async def test_liveness_answers_before_the_model_loads_and_readiness_only_after(
    registry: Registry, tmp_path: Path
) -> None:
    app = app_for(registry, tmp_path)
    async with asgi_client(app) as client:
        assert (await client.get("/v2/health/live")).status_code == 200
        not_ready = await client.get("/v2/health/ready")
        assert not_ready.status_code == 503 and "not loaded" in not_ready.json()["error"]
        early = await client.post(INFER, json=infer_body(X[:1]))
        assert early.status_code == 503 and "not ready" in early.json()["error"]
        await started(app)
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        assert (await client.get(f"/v2/models/{MODEL}/ready")).status_code == 200
    await app.shutdown()


@pytest.fixture
async def app(registry: Registry, tmp_path: Path):
    app = app_for(registry, tmp_path, stable="v1", candidate="v2", candidate_weight=25)
    await started(app)
    yield app
    await app.shutdown()


async def test_metadata_describes_server_model_and_versions(app) -> None:
    async with asgi_client(app) as client:
        server = (await client.get("/v2")).json()
        assert server["name"] == "meridian-test" and "binary_tensor_data" in server["extensions"]
        model = (await client.get(f"/v2/models/{MODEL}")).json()
        assert model["versions"] == ["v1", "v2"]
        assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
        assert [o["name"] for o in model["outputs"]] == ["probabilities", "label"]
        parameters = model["parameters"]
        assert (parameters["stable"], parameters["candidate"], parameters["candidate_weight"]) == ("v1", "v2", 25)
        assert parameters["artifacts"]["v2"].startswith(f"{MODEL}/v2/test-region/fp32 (weights sha256 ")
        assert (await client.get(f"/v2/models/{MODEL}/versions/v2")).json()["versions"] == ["v2"]


async def test_inference_returns_the_signed_models_predictions_whatever_the_content_type(
    app, registry: Registry
) -> None:
    expected = registry.model(1)(__import__("torch").from_numpy(X[:5])).argmax(1).tolist()
    async with asgi_client(app) as client:
        response = await client.post(
            f"/v2/models/{MODEL}/versions/v1/infer",
            content=json.dumps(infer_body(X[:5], id="req-7")),
            headers={"content-type": "text/plain"},
        )
    assert response.status_code == 200
    result = response.json()
    assert result["id"] == "req-7" and result["model_version"] == "v1"
    outputs = {o["name"]: o for o in result["outputs"]}
    assert outputs["label"]["data"] == expected
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "message"),
    [
        ("POST", "/v2/models/other/infer", infer_body(X[:1]), {}, 404, "unknown model 'other'"),
        ("POST", f"/v2/models/{MODEL}/versions/v9/infer", infer_body(X[:1]), {}, 404, "'v9' is not loaded"),
        ("POST", INFER, infer_body(X[:1]), {VERSION_HEADER: "v9"}, 404, "'v9' is not loaded"),
        ("POST", INFER, infer_body(X[:1, :8]), {}, 400, "has shape [1, 8]"),
        (
            "POST",
            INFER,
            {"inputs": [{"name": "input", "datatype": "FP16", "shape": [1, 64], "data": [0] * 64}]},
            {},
            400,
            "datatype",
        ),
        (
            "POST",
            INFER,
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 64], "data": [0] * 64}]},
            {},
            400,
            "unknown input 'x'",
        ),
        (
            "POST",
            INFER,
            b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,64],"data":[NaN' + b",0" * 63 + b"]}]}",
            {},
            400,
            "not valid JSON",
        ),
        ("POST", INFER, b"{", {}, 400, "not valid JSON"),
        ("POST", INFER, b"x" * (1 << 20 + 1), {}, 400, "exceeds the limit"),
        ("GET", INFER, None, {}, 405, "not allowed"),
        ("POST", "/v2/nowhere", b"{}", {}, 404, "no route"),
        ("DELETE", "/v2/health/live", None, {}, 405, "use GET"),
        ("GET", "/v2/nowhere", None, {}, 404, "no route"),
        ("GET", "/v2/models/other", None, {}, 404, "unknown model"),
        ("GET", f"/v2/models/{MODEL}/versions/v9", None, {}, 404, "'v9' is not loaded"),
    ],
)
async def test_every_error_path_answers_in_the_v2_error_shape(
    app, method, path, body, headers, status, message
) -> None:
    async with asgi_client(app) as client:
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        response = await client.request(method, path, content=content, headers=headers)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and message in response.json()["error"]


async def test_a_batch_mixing_valid_and_invalid_requests_answers_each_on_its_own(
    registry: Registry, tmp_path: Path
) -> None:
    # A long batch wait, so that all 20 good rows land in one batch even on a busy machine.
    app = app_for(registry, tmp_path, max_batch_wait_ms=500.0, max_batch_size=64)
    await started(app)
    good = [infer_body(X[i : i + 1]) for i in range(20)]
    bad = [infer_body(X[i : i + 1, :32]) for i in range(10)] + [
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": ["x"] * 64}]}
    ] * 10
    async with asgi_client(app) as client:
        responses = await asyncio.gather(*(client.post(INFER, json=b) for b in [*good, *bad]))
    await app.shutdown()
    assert [r.status_code for r in responses] == [200] * 20 + [400] * 20
    labels = [r.json()["outputs"][1]["data"][0] for r in responses[:20]]
    expected = registry.model(1)(__import__("torch").from_numpy(X[:20])).argmax(1).tolist()
    assert labels == expected
    metrics = exposition(app.metrics)
    assert 'meridian_inference_batch_size_count{model="meridian",version="v1"} 1.0' in metrics, (
        "all 20 good rows in one batch"
    )


async def test_a_full_queue_answers_429_with_retry_after_at_once(registry: Registry, tmp_path: Path) -> None:
    app = app_for(registry, tmp_path, queue_capacity=2, max_batch_wait_ms=1000.0)
    await started(app)
    async with asgi_client(app) as client:
        responses = await asyncio.gather(*(client.post(INFER, json=infer_body(X[:1])) for _ in range(5)))
    await app.shutdown()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "queue full" in refused.json()["error"]


async def test_unpinned_traffic_follows_the_split_and_the_header_pins_a_version(app) -> None:
    async with asgi_client(app) as client:
        split = [(await client.post(INFER, json=infer_body(X[:1]))).json()["model_version"] for _ in range(100)]
        pinned = [
            (await client.post(INFER, json=infer_body(X[:1]), headers={VERSION_HEADER: "v2"})).json()["model_version"]
            for _ in range(10)
        ]
    assert split.count("v2") == 25 and split.count("v1") == 75
    assert pinned == ["v2"] * 10
    metrics = exposition(app.metrics)
    assert 'meridian_inference_requests_total{model="meridian",status="200",version="v2"} 35.0' in metrics
    assert 'meridian_inference_requests_total{model="meridian",status="200",version="v1"} 75.0' in metrics


async def test_metrics_expose_requests_latency_batches_queue_and_loaded_versions(app) -> None:
    async with asgi_client(app) as client:
        await client.post(INFER, json=infer_body(X[:3]), headers={VERSION_HEADER: "v1"})
        await client.post(INFER, json=infer_body(X[:1, :3]))
    metrics = exposition(app.metrics)
    for line in [
        'meridian_inference_requests_total{model="meridian",status="200",version="v1"} 1.0',
        'meridian_inference_requests_total{model="meridian",status="400",version="v1"}',
        'meridian_inference_request_duration_seconds_count{model="meridian",version="v1"} 1.0',
        'meridian_inference_batch_size_sum{model="meridian",version="v1"} 3.0',
        'meridian_inference_queue_depth{model="meridian",version="v2"} 0.0',
        'meridian_model_version_loaded{model="meridian",role="stable",version="v1"} 1.0',
        'meridian_model_version_loaded{model="meridian",role="candidate",version="v2"} 1.0',
        'meridian_model_traffic_percent{model="meridian",version="v2"} 25.0',
        'meridian_inference_in_flight{model="meridian"} 0.0',
    ]:
        assert line in metrics, line


def test_metrics_are_served_on_their_own_port_and_never_on_the_public_one(registry: Registry, tmp_path: Path) -> None:
    app = app_for(registry, tmp_path)
    with serving(app) as url, metrics_listener(app.metrics) as metrics_url:
        httpx.post(f"{url}{INFER}", json=infer_body(X[:1])).raise_for_status()
        scraped = httpx.get(metrics_url)
        public = httpx.get(f"{url}{METRICS_PATH}")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    for family in (
        "meridian_inference_requests_total",
        "meridian_inference_request_duration_seconds_bucket",
        "meridian_inference_queue_depth",
        "meridian_inference_in_flight",
        "meridian_model_version_loaded",
        "meridian_model_traffic_percent",
        "meridian_model_reloads_total",
    ):
        assert f"\n{family}{{" in scraped.text, family
    assert 'meridian_inference_requests_total{model="meridian",status="200",version="v1"} 1.0' in scraped.text
    assert public.status_code == 404 and public.json() == {"error": f"no route for {METRICS_PATH}"}


class HeldAnswerer:
    """Answers with the model, but only once `release` is set: requests stay in flight."""

    def __init__(self, requests: int) -> None:
        self.release = asyncio.Event()
        self.all_held = asyncio.Event()
        self._to_hold = requests

    async def answer(self, request: InferRequest, served: ServedVersion) -> tuple[np.ndarray, dict]:
        future = served.submit(request.x)
        self._to_hold -= 1
        if self._to_hold == 0:
            self.all_held.set()
        await self.release.wait()
        return await future, {}

    async def close(self) -> None:
        pass


async def test_in_flight_counts_requests_accepted_and_not_yet_answered(registry: Registry, tmp_path: Path) -> None:
    held = HeldAnswerer(requests=5)
    app = app_for(registry, tmp_path, answerer=held)
    await started(app)
    in_flight = 'meridian_inference_in_flight{model="meridian"}'
    async with asgi_client(app) as client:
        requests = [asyncio.create_task(client.post(INFER, json=infer_body(X[i : i + 1]))) for i in range(5)]
        await held.all_held.wait()
        during = exposition(app.metrics)
        held.release.set()
        responses = await asyncio.gather(*requests)
    after = exposition(app.metrics)
    await app.shutdown()
    assert [r.status_code for r in responses] == [200] * 5
    assert f"{in_flight} 5.0" in during and f"{in_flight} 0.0" in after


async def test_repository_load_swaps_versions_and_needs_the_admin_token(app) -> None:
    body = {"parameters": {"stable": "v2"}}
    async with asgi_client(app, Role.ADMIN) as admin, asgi_client(app) as client:
        assert (await admin.post(LOAD, json=body)).status_code == 401
        assert (await admin.post(LOAD, json=body, headers={"authorization": "Bearer wrong"})).status_code == 401
        assert (await admin.post(LOAD, json=body, headers={"authorization": ADMIN_TOKEN})).status_code == 401
        bad = await admin.post(LOAD, json={"parameters": {"stable": "v2", "config": "{}"}}, headers=ADMIN_AUTH)
        assert bad.status_code == 400 and "unknown load parameters: config" in bad.json()["error"]
        assert (await admin.post(LOAD, json=body, headers=ADMIN_AUTH)).json()["stable"] == "v2"
        after = await client.post(INFER, json=infer_body(X[:1]))
        gone = await client.post(INFER, json=infer_body(X[:1]), headers={VERSION_HEADER: "v1"})
    assert after.json()["model_version"] == "v2"
    assert gone.status_code == 404


async def test_a_tampered_artifact_is_refused_and_the_old_version_keeps_serving(app) -> None:
    async with asgi_client(app, Role.ADMIN) as admin, asgi_client(app) as client:
        refused = await admin.post(LOAD, json={"parameters": {"stable": "v3"}}, headers=ADMIN_AUTH)
        still = await client.post(INFER, json=infer_body(X[:1]), headers={VERSION_HEADER: "v1"})
    metrics = exposition(app.metrics)
    assert refused.status_code == 400
    assert "artifact refused" in refused.json()["error"] and "sha256" in refused.json()["error"]
    assert "still serving" in refused.json()["error"]
    assert still.status_code == 200 and still.json()["model_version"] == "v1"
    assert 'meridian_model_reloads_total{model="meridian",outcome="rejected"} 1.0' in metrics


async def test_the_admin_api_is_off_without_an_admin_token(registry: Registry, tmp_path: Path) -> None:
    app = app_for(registry, tmp_path, admin_token=None)
    async with asgi_client(app, Role.ADMIN) as client:
        response = await client.post(LOAD, json={"parameters": {"stable": "v2"}})
    assert response.status_code == 403 and "disabled" in response.json()["error"]
