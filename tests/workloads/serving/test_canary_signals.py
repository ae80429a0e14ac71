"""What a server gives the canary analysis: every answer carries its request id, true labels fed
back for those ids count per version, candidate answers are re-run on stable and their top-1
agreement counted, and following `latest` with a weight makes each new version a candidate
(one the repository API withdrew is not taken again)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from prometheus_client import generate_latest

from tests.workloads.serving.support import (
    ADMIN_AUTH,
    INFER,
    LOAD,
    MODEL,
    TASK,
    Registry,
    app_for,
    asgi_client,
    digits,
    infer_body,
    make_registry,
    started,
)
from workloads.contract import FEEDBACK_SUFFIX
from workloads.serving.app import InferenceApp, Role

pytestmark = pytest.mark.anyio
X, Y = digits()
FEEDBACK = f"/v2/models/{MODEL}/{FEEDBACK_SUFFIX}"
UNTRAINED = 99  # a registry seed whose model is never trained: a bad candidate


def with_untrained(registry: Registry) -> Registry:
    torch.manual_seed(UNTRAINED)
    registry.models[UNTRAINED] = TASK.build_model().eval()
    return registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    registry = make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1, "same": 1})
    with_untrained(registry).publish("bad", seed=UNTRAINED)
    return registry


def metrics(app: InferenceApp) -> str:
    return generate_latest(app.metrics.registry).decode()


async def test_answers_echo_the_client_id_or_carry_a_generated_one(registry: Registry, tmp_path: Path) -> None:
    app = app_for(registry, tmp_path)
    await started(app)
    async with asgi_client(app) as client:
        given = (await client.post(INFER, json=infer_body(X[:1], id="req-1"))).json()
        first = (await client.post(INFER, json=infer_body(X[:1]))).json()
        second = (await client.post(INFER, json=infer_body(X[:1]))).json()
    await app.shutdown()
    assert given["id"] == "req-1"
    assert first["id"] and second["id"] and first["id"] != second["id"]


async def test_feedback_counts_correct_and_incorrect_per_version_once_per_id(
    registry: Registry, tmp_path: Path
) -> None:
    app = app_for(registry, tmp_path)
    await started(app)
    async with asgi_client(app) as client:
        answers = [(await client.post(INFER, json=infer_body(X[i : i + 1]))).json() for i in range(4)]
        rows = (await client.post(INFER, json=infer_body(X[:3], id="three-rows"))).json()
        predicted = [a["outputs"][1]["data"][0] for a in answers]
        one = await client.post(FEEDBACK, json={"id": answers[0]["id"], "label": predicted[0]})
        batch = await client.post(
            FEEDBACK,
            json={
                "feedback": [
                    {"id": answers[1]["id"], "label": predicted[1]},
                    {"id": answers[2]["id"], "label": (predicted[2] + 1) % 10},
                    {"id": "three-rows", "label": rows["outputs"][1]["data"]},
                ]
            },
        )
        again = await client.post(FEEDBACK, json={"id": answers[0]["id"], "label": predicted[0]})
        unknown = await client.post(FEEDBACK, json={"id": "never-served", "label": 3})
        partly = await client.post(
            FEEDBACK, json={"feedback": [{"id": answers[3]["id"], "label": 1}, {"id": "never-served", "label": 1}]}
        )
        not_a_class = await client.post(FEEDBACK, json={"id": "x", "label": "seven"})
        wrong_rows = await client.post(INFER, json=infer_body(X[:2], id="two-rows"))
        mismatch = await client.post(FEEDBACK, json={"id": "two-rows", "label": 1})
        malformed = await client.post(FEEDBACK, content=b"{")
        wrong_model = await client.post(f"/v2/models/other/{FEEDBACK_SUFFIX}", json={"id": "x", "label": 1})
        get = await client.get(FEEDBACK)
    await app.shutdown()
    assert (one.status_code, one.json()) == (200, {"recorded": 1})
    assert (batch.status_code, batch.json()) == (200, {"recorded": 3})
    assert again.status_code == 404 and "unknown request id" in again.json()["error"]
    assert unknown.status_code == 404 and "'never-served'" in unknown.json()["error"]
    assert partly.status_code == 404 and partly.json()["recorded"] == 1
    assert not_a_class.status_code == 422 and "class index" in not_a_class.json()["error"]
    assert wrong_rows.status_code == 200
    assert mismatch.status_code == 422 and "the request had 2 rows" in mismatch.json()["error"]
    assert malformed.status_code == 400 and wrong_model.status_code == 404 and get.status_code == 405
    text = metrics(app)
    # correct: answers 0 and 1, the three rows, and answer 3 if its label happened to be 1.
    correct = 5 + (predicted[3] == 1)
    assert f'meridian_feedback_total{{model="meridian",outcome="correct",version="v1"}} {correct}.0' in text
    assert f'meridian_feedback_total{{model="meridian",outcome="incorrect",version="v1"}} {7 - correct}.0' in text


async def _candidate_agreement(app: InferenceApp, requests: int) -> tuple[float, float]:
    async with asgi_client(app) as client:
        for i in range(requests):
            await client.post(INFER, json=infer_body(X[i : i + 1]))
    for _ in range(200):  # the shadows run after the answers: let the stable batcher drain
        text = metrics(app)
        counts = [
            _value(text, f'outcome="{o}",version="{app.router.routing.split.candidate}"') for o in ("agree", "disagree")
        ]  # type: ignore[union-attr]
        if sum(counts) == requests // 2:
            return counts[0], counts[1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"shadowed rows never reached {requests // 2}:\n{text}")


def _value(text: str, labels: str) -> float:
    line = next(
        line for line in text.splitlines() if line.startswith("meridian_canary_agreement_total") and labels in line
    )
    return float(line.rsplit(" ", 1)[1])


async def test_candidate_answers_are_rerun_on_stable_and_top1_agreement_counted(
    registry: Registry, tmp_path: Path
) -> None:
    same = app_for(registry, tmp_path / "same", stable="v1", candidate="same", candidate_weight=50)
    bad = app_for(registry, tmp_path / "bad", stable="v1", candidate="bad", candidate_weight=50)
    for app in (same, bad):
        await started(app)
    same_counts = await _candidate_agreement(same, 40)
    bad_counts = await _candidate_agreement(bad, 40)
    for app in (same, bad):
        await app.shutdown()
    assert same_counts == (20, 0), "identical weights always agree"
    assert bad_counts[1] > bad_counts[0], "an untrained candidate mostly disagrees"


async def test_stable_requests_are_never_shadowed(registry: Registry, tmp_path: Path) -> None:
    app = app_for(registry, tmp_path)
    await started(app)
    async with asgi_client(app) as client:
        for i in range(5):
            await client.post(INFER, json=infer_body(X[i : i + 1]))
    await app.shutdown()
    counted = [line for line in metrics(app).splitlines() if line.startswith("meridian_canary_agreement_total{")]
    assert counted and all(line.endswith(" 0.0") for line in counted), counted


async def test_following_latest_with_a_weight_takes_each_new_version_as_candidate_until_withdrawn(
    tmp_path: Path,
) -> None:
    registry = make_registry(tmp_path, {"v1": 1})
    app = app_for(registry, tmp_path / "cache", stable="latest", candidate_weight=20, reload_interval_s=0.05)
    await started(app)

    async def split_becomes(expected: tuple[str, str | None, int]) -> None:
        for _ in range(400):
            routing = app.router.routing
            if routing and (routing.split.stable, routing.split.candidate, routing.split.weight) == expected:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"split never became {expected}: {app.router.routing}")

    await split_becomes(("v1", None, 0))
    registry.publish("v2", seed=2)
    await split_becomes(("v1", "v2", 20))
    async with asgi_client(app, Role.ADMIN) as client:
        rolled_back = await client.post(LOAD, json={"parameters": {"stable": "v1"}}, headers=ADMIN_AUTH)
        assert rolled_back.status_code == 200
        await asyncio.sleep(0.3)  # several polls of the registry, whose latest is still v2
        assert app.router.routing is not None and app.router.routing.split.versions == ("v1",)
        registry.publish("v3", seed=3)
        await split_becomes(("v1", "v3", 20))
        promoted = await client.post(LOAD, json={"parameters": {"stable": "v3"}}, headers=ADMIN_AUTH)
        assert promoted.status_code == 200
    await split_becomes(("v3", None, 0))
    await app.shutdown()
