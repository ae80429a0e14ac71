"""The canary controller against real servers on loopback and a real Prometheus scraping them:
a new `latest` enters as the candidate; the controller waits for enough requests, then promotes
a good candidate and rolls back a bad one (by fed-back accuracy, or by disagreement with stable)
on every server, a late replica that took the bad version as stable included. It drives the
servers' admin listeners, and a rotated admin token reaches it without a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from components.config import CanaryAnalysis
from tests.workloads.canary.support import needs_prometheus, prometheus
from tests.workloads.serving.mounted_secret import MountedSecret
from tests.workloads.serving.support import (
    ADMIN_AUTH,
    ADMIN_TOKEN,
    INFER,
    MODEL,
    REGION,
    TASK,
    Registry,
    Urls,
    app_for,
    digits,
    free_port,
    infer_body,
    listening,
    make_registry,
    metrics_listener,
)
from workloads import contract
from workloads.canary.analysis import Decision, Thresholds, Verdict
from workloads.canary.controller import Controller, Settings
from workloads.serving.admin_token import AdminToken

pytestmark = needs_prometheus
X, Y = digits()
ROOT = Path(__file__).resolve().parents[3]
UNTRAINED = 99
# Tiny numbers: the whole test fits in the window; latency is not what these tests judge.
THRESHOLDS = Thresholds(
    window_seconds=60,
    min_requests=20,
    max_error_rate_increase=0.01,
    max_p99_ratio=100,
    min_agreement=0.9,
    max_accuracy_drop=0.05,
    min_labelled=20,
)
Traffic = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = make_registry(tmp_path, {"v1": 1})
    registry.models[UNTRAINED] = TASK.build_model().eval()
    return registry


def split_of(urls: Urls) -> tuple[str, str | None]:
    parameters = httpx.get(f"{urls.admin}/v2/models/{MODEL}", headers=ADMIN_AUTH).json()["parameters"]
    return parameters["stable"], parameters["candidate"]


def wait_for_split(urls: Urls, expected: tuple[str, str | None]) -> None:
    deadline = time.monotonic() + 60
    while split_of(urls) != expected:
        assert time.monotonic() < deadline, f"{urls} never served {expected}: {split_of(urls)}"
        time.sleep(0.05)


@contextmanager
def fleet(registry: Registry, tmp: Path, candidate_seed: int) -> Iterator[tuple[Urls, Urls, str]]:
    """A server following `latest` at weight 50 (the candidate: `candidate_seed`'s model as
    "v2"), a replica following `latest` without a weight (it takes v2 as its stable), and a
    Prometheus scraping the first (the replica gets no traffic). Yields their URLs."""
    with ExitStack() as stack:
        judged = app_for(registry, tmp / "a", stable="latest", candidate_weight=50, reload_interval_s=0.1)
        server = stack.enter_context(listening(judged))
        replica = stack.enter_context(listening(app_for(registry, tmp / "b", stable="latest", reload_interval_s=0.1)))
        registry.publish("v2", seed=candidate_seed)
        wait_for_split(server, ("v1", "v2"))
        wait_for_split(replica, ("v2", None))
        labels = {"region": REGION, "app": contract.MetricsApp.SERVER.value}
        metrics_url = stack.enter_context(metrics_listener(judged.metrics))
        prom = stack.enter_context(prometheus(tmp, {metrics_url: labels}))
        yield server, replica, prom


async def send(url: str, rows: int, *, feedback: bool = False) -> None:
    """`rows` single-row requests, each answered label fed back when `feedback`."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for i in range(rows):
            answer = (await client.post(INFER, json=infer_body(X[i : i + 1]))).json()
            if feedback:
                response = await client.post(
                    f"/v2/models/{MODEL}/{contract.FEEDBACK_SUFFIX}", json={"id": answer["id"], "label": int(Y[i])}
                )
                assert response.status_code == 200, response.text


async def judge(controller: Controller) -> Verdict:
    """Passes until a decision (Prometheus scrapes on its own clock)."""
    deadline = time.monotonic() + 60
    while True:
        verdict = await controller.step()
        if verdict is not None and verdict.decision is not None:
            return verdict
        assert time.monotonic() < deadline, f"no decision: {verdict}"
        await asyncio.sleep(0.2)


def controller(
    prom: str,
    targets: str,
    thresholds: Thresholds,
    client: httpx.AsyncClient,
    registry: CollectorRegistry | None = None,
) -> Controller:
    return Controller(
        Settings(prom, REGION, MODEL, targets, thresholds, AdminToken(value=ADMIN_TOKEN)), client, registry
    )


def test_a_candidate_that_disagrees_with_stable_is_rolled_back_everywhere_but_not_before_min_requests(
    registry: Registry, tmp_path: Path
) -> None:
    with fleet(registry, tmp_path, UNTRAINED) as (server, replica, prom):

        async def scenario() -> tuple[Verdict | None, Verdict, str]:
            async with httpx.AsyncClient(timeout=10) as client:
                decisions = CollectorRegistry()
                c = controller(prom, f"{server.admin},{replica.admin}", THRESHOLDS, client, decisions)
                await send(server.public, 2 * THRESHOLDS.min_requests - 10)  # short of min_requests for each
                await asyncio.sleep(1)  # several scrapes
                early = await c.step()
                await send(server.public, 20)
                verdict = await judge(c)
                return early, verdict, generate_latest(decisions).decode()

        early, verdict, metrics = asyncio.run(scenario())
        assert early is not None and early.decision is None and "waiting for 20 requests" in early.reason
        assert verdict.decision is Decision.ROLLED_BACK and "agreement" in verdict.reason, verdict
        assert "agreement=0." in verdict.evidence and "(min 0.9)" in verdict.evidence
        assert split_of(server) == ("v1", None)
        assert split_of(replica) == ("v1", None), "the replica that took v2 as stable falls back too"
        assert 'meridian_canary_decisions_total{candidate="v2",decision="rolled_back",model="meridian"} 1.0' in metrics
        time.sleep(0.5)  # several registry polls: latest is still v2, withdrawn
        assert split_of(server) == ("v1", None)


def test_a_candidate_with_worse_fed_back_accuracy_is_rolled_back(registry: Registry, tmp_path: Path) -> None:
    lenient = Thresholds(**{**THRESHOLDS.__dict__, "min_agreement": 0.0})  # only accuracy can fail it
    with fleet(registry, tmp_path, UNTRAINED) as (server, _, prom):

        async def scenario() -> Verdict:
            async with httpx.AsyncClient(timeout=10) as client:
                await send(server.public, 4 * THRESHOLDS.min_labelled, feedback=True)
                return await judge(controller(prom, str(server.admin), lenient, client))

        verdict = asyncio.run(scenario())
        assert verdict.decision is Decision.ROLLED_BACK and "accuracy drop" in verdict.reason, verdict
        assert "(max drop 0.05, min labels 20)" in verdict.evidence
        assert split_of(server) == ("v1", None)


def test_a_good_candidate_is_promoted_by_the_controller_process(registry: Registry, tmp_path: Path) -> None:
    metrics_port = free_port()
    with fleet(registry, tmp_path, 1) as (server, _, prom):  # v2: v1's very weights
        port = str(server.admin).rsplit(":", 1)[1]
        env = {
            **os.environ,
            contract.ENV_ADMIN_TOKEN: ADMIN_TOKEN,
            contract.ENV_METRICS_PORT: str(metrics_port),
            "PYTHONPATH": str(ROOT),
        }
        # The stack config's analysis, through the flags builder both deployments use.
        analysis = CanaryAnalysis.model_validate(
            {
                "intervalSeconds": 5,
                "windowSeconds": THRESHOLDS.window_seconds,
                "minRequests": THRESHOLDS.min_requests,
                "maxP99Ratio": THRESHOLDS.max_p99_ratio,
            }
        )
        args = contract.canary_args(
            prometheus=prom, region=REGION, model=MODEL, targets=f"dns+http://localhost:{port}", analysis=analysis
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "workloads.canary", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            asyncio.run(send(server.public, 60))
            wait_for_split(server, ("v2", None))
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        finally:
            process.terminate()
            output = process.communicate(timeout=20)[0]
    assert 'meridian_canary_decisions_total{candidate="v2",decision="promoted",model="meridian"} 1.0' in metrics
    decision = next(line for line in output.splitlines() if "canary decision" in line)
    assert "promoted v2" in decision and "agreement=1.0000" in decision and "(min 0.9)" in decision, output


def test_a_rotated_admin_token_reaches_the_controller_on_its_next_pass(registry: Registry, tmp_path: Path) -> None:
    secret = MountedSecret(tmp_path / "admin", "token", "before")
    # The server refuses a replaced token at once (no grace): only the controller's re-read helps.
    server = app_for(registry, tmp_path / "cache", admin_token=AdminToken(path=secret.path, grace_s=0))
    answered: list[tuple[str, int]] = []

    async def record(response: httpx.Response) -> None:
        answered.append((response.request.headers["authorization"], response.status_code))

    async def passes() -> None:
        async with httpx.AsyncClient(timeout=10, event_hooks={"response": [record]}) as client:
            settings = Settings("http://prometheus.invalid", REGION, MODEL, str(urls.admin), THRESHOLDS, token)
            c = Controller(settings, client)
            await c.step()  # no candidate: it reads every target's split and stops there
            secret.update("after")
            await c.step()

    token = AdminToken(path=secret.path)
    with listening(server) as urls:
        asyncio.run(passes())
    assert answered == [("Bearer before", 200), ("Bearer after", 200)]
