"""Hot reload over a real socket, under concurrent load: a swap fails no request, a tampered or
wrongly signed artifact is refused while the old version keeps answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.workloads.serving.support import (
    ADMIN_AUTH,
    INFER,
    LOAD,
    MODEL,
    REGION,
    TASK,
    Registry,
    app_for,
    digits,
    exposition,
    infer_body,
    listening,
    make_registry,
    serving,
)
from workloads.registry import ArtifactId, Variant, generate_keypair, publish

X, _ = digits()


async def under_load(
    url: str, action: Callable[[httpx.AsyncClient], Awaitable[Any]], concurrency: int = 8
) -> tuple[list[tuple[int, str]], Any]:
    """Run `action` while `concurrency` clients send requests back to back to `url`; return every
    (status, model_version) in completion order and what `action` returned (its client: `url`)."""
    results: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient, i: int) -> None:
        while not stop.is_set():
            response = await client.post(INFER, json=infer_body(X[i : i + 1]))
            results.append((response.status_code, response.json().get("model_version", response.text)))

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        workers = [asyncio.create_task(client_loop(client, i)) for i in range(concurrency)]
        await asyncio.sleep(0.3)
        outcome = await action(client)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*workers)
    return results, outcome


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path, {"v1": 1})


def test_swapping_versions_under_load_fails_no_request(registry: Registry, tmp_path: Path) -> None:
    registry.publish("v2", seed=2)

    with listening(app_for(registry, tmp_path / "cache")) as urls:

        async def swap(_: httpx.AsyncClient) -> int:
            async with httpx.AsyncClient(base_url=str(urls.admin)) as admin:
                response = await admin.post(LOAD, json={"parameters": {"stable": "v2"}}, headers=ADMIN_AUTH)
            return response.status_code

        results, status = asyncio.run(under_load(urls.public, swap))
    assert status == 200
    assert {code for code, _ in results} == {200}, "zero failed requests during the swap"
    versions = [version for _, version in results]
    assert versions[0] == "v1" and versions[-1] == "v2"
    assert len(results) > 50


def test_a_tampered_artifact_under_load_is_refused_and_the_old_version_keeps_answering(
    registry: Registry, tmp_path: Path
) -> None:
    registry.publish("v2", seed=2)
    manifest = registry.artifact_dir("v2") / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"parent_version":"v2"', b'"parent_version":"vX"'))

    with listening(app_for(registry, tmp_path / "cache")) as urls:

        async def load_tampered(_: httpx.AsyncClient) -> httpx.Response:
            async with httpx.AsyncClient(base_url=str(urls.admin)) as admin:
                return await admin.post(LOAD, json={"parameters": {"stable": "v2"}}, headers=ADMIN_AUTH)

        results, refused = asyncio.run(under_load(urls.public, load_tampered))
    assert refused.status_code == 400 and "signature" in refused.json()["error"]
    assert set(results) == {(200, "v1")}


def test_following_latest_swaps_in_new_signed_versions_and_refuses_foreign_ones(
    registry: Registry, tmp_path: Path
) -> None:
    app = app_for(registry, tmp_path / "cache", stable="latest", reload_interval_s=0.1)

    async def publish_and_wait(client: httpx.AsyncClient, publish_next: Callable[[], None], expect: str) -> None:
        publish_next()
        for _ in range(400):
            if (await client.get(f"/v2/models/{MODEL}")).json()["versions"] == [expect]:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"never switched to {expect}")

    def publish_foreign_v3() -> None:
        # Signed, but with a key the server does not trust.
        foreign_key, _ = generate_keypair(tmp_path / "foreign")
        publish(
            registry.model(3),
            TASK,
            registry.url,
            foreign_key,
            artifact=ArtifactId(MODEL, "v3", REGION, Variant.FP32),
            parent_version="v2",
        )

    with serving(app) as url:
        results, _ = asyncio.run(
            under_load(url, lambda c: publish_and_wait(c, lambda: registry.publish("v2", seed=2), "v2"))
        )
        assert {code for code, _ in results} == {200} and results[-1] == (200, "v2")

        async def foreign(client: httpx.AsyncClient) -> str:
            publish_foreign_v3()
            await asyncio.sleep(0.5)  # several polls
            return exposition(app.metrics)

        results, metrics = asyncio.run(under_load(url, foreign))
    assert set(results) == {(200, "v2")}
    assert 'meridian_model_reloads_total{model="meridian",outcome="rejected"} 1.0' in metrics, (
        "refused once, not retried"
    )
