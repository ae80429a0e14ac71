"""The device path (workloads/serving/devices.py), on CPU: with the forward offloaded to the
device's worker thread, a forward that blocks leaves the server answering meanwhile, the answers
equal the in-loop path's, a model failure is the caller's 500 and not the worker's end, and
shutdown ends the worker; a model on a CUDA device gets the worker and the CUDA batch cap; the
settings that choose all this are validated. Real servers on loopback, real signed artifacts.
No GPU here: the CUDA case is a model that says it is on one and computes on CPU."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
import torch

from tests.workloads.serving.support import (
    INFER,
    MODEL,
    REGION,
    Registry,
    app_for,
    digits,
    infer_body,
    make_registry,
    serving,
    settings,
)
from workloads import contract
from workloads.serving.app import InferenceApp
from workloads.serving.devices import WORKER_THREAD_PREFIX, BatchingConfig, DeviceBatching, Offload
from workloads.serving.models import LoadedModel, RegistryModelSource
from workloads.serving.runner import build_app
from workloads.serving.settings import parse_serving_args, serving_parser

X, _ = digits()
LIVE = contract.LIVENESS_PATH
CPU_CAP = 8  # the CPU batch cap in these tests: a batch above it took the CUDA cap
HEALTH_TIMEOUT_S = 30.0  # a free loop answers long before, however loaded the machine
BLOCKED_LOOP_TIMEOUT_S = 2.0  # how long the control test waits for an answer a blocked loop cannot give


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1})


@dataclass
class Gate:
    """What the test holds over the model: each forward records its thread and rows, says it
    has started, then waits for `release`; `fail_next` makes the next forward raise."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    threads: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    fail_next: bool = False

    def __post_init__(self) -> None:
        self.release.set()  # open unless a test closes it


class GatedModule(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, gate: Gate):
        super().__init__()
        self.inner = inner
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate
        gate.threads.append(threading.current_thread().name)
        gate.rows.append(len(x))
        gate.entered.set()
        if not gate.release.wait(timeout=60):
            raise TimeoutError("the test never released the forward pass")
        if gate.fail_next:
            gate.fail_next = False
            raise RuntimeError("the model failed")
        return self.inner(x)


@dataclass(frozen=True)
class ClaimsCuda(LoadedModel):
    """A model that says it is on a CUDA device, so that the server batches and offloads as for
    one, and computes on CPU (this machine has no GPU)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return LoadedModel.predict(replace(self, device=torch.device("cpu")), x)


class GatedSource:
    """The registry's signed artifacts, each loaded model behind `gate`."""

    def __init__(self, registry: Registry, cache: Path, gate: Gate, claims_cuda: bool = False):
        self._source = RegistryModelSource(registry.url, MODEL, REGION, "fp32", registry.trusted_key, cache)
        self._gate = gate
        self._claims_cuda = claims_cuda

    def load(self, version: str) -> LoadedModel:
        loaded = self._source.load(version)
        model = replace(loaded, module=GatedModule(loaded.module, self._gate))
        if self._claims_cuda:
            return ClaimsCuda(**{**vars(model), "device": torch.device("cuda")})
        return model


def gated_app(registry: Registry, tmp_path: Path, gate: Gate, claims_cuda: bool = False, **overrides) -> InferenceApp:
    return build_app(
        settings(registry, tmp_path, **overrides),
        server_name="meridian-test",
        source=GatedSource(registry, tmp_path / "cache", gate, claims_cuda),
    )


def expected(registry: Registry, x: np.ndarray) -> np.ndarray:
    """The probabilities the published model gives `x`, computed here."""
    with torch.inference_mode():
        return torch.softmax(registry.model(1)(torch.from_numpy(x)), dim=1).numpy()


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_THREAD_PREFIX)]


def blocked_forward_then_health(
    url: str, gate: Gate, health_timeout_s: float
) -> tuple[httpx.Response | Exception, np.ndarray]:
    """Start an inference whose forward blocks; once it has started, ask for liveness (waiting
    at most `health_timeout_s`); only then release the forward. The health answer (or the
    timeout), and the inference's probabilities."""
    gate.release.clear()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{url}{INFER}", json=infer_body(X[:3]), timeout=60)
        assert gate.entered.wait(timeout=30), "the forward pass never started"
        try:
            health: httpx.Response | Exception = httpx.get(f"{url}{LIVE}", timeout=health_timeout_s)
        except httpx.TimeoutException as err:
            health = err
        assert not pending.done(), "the forward pass is held until the health request is over"
        gate.release.set()
        answer = pending.result(timeout=60)
    assert answer.status_code == 200, answer.text
    return health, np.array(answer.json()["outputs"][0]["data"]).reshape(3, -1)


def test_with_offload_a_blocked_forward_leaves_the_server_answering(registry: Registry, tmp_path: Path) -> None:
    gate = Gate()
    with serving(gated_app(registry, tmp_path, gate, forward_offload=Offload.ON)) as url:
        health, probabilities = blocked_forward_then_health(url, gate, HEALTH_TIMEOUT_S)
    assert isinstance(health, httpx.Response) and health.json() == {"live": True}
    np.testing.assert_allclose(probabilities, expected(registry, X[:3]), atol=1e-5)
    assert gate.threads and all(name.startswith(f"{WORKER_THREAD_PREFIX}-cpu") for name in gate.threads)


def test_without_offload_a_blocked_forward_blocks_the_server(registry: Registry, tmp_path: Path) -> None:
    """The control: the same test fails on the in-loop path (the CPU default)."""
    gate = Gate()
    with serving(gated_app(registry, tmp_path, gate)) as url:
        health, probabilities = blocked_forward_then_health(url, gate, BLOCKED_LOOP_TIMEOUT_S)
        assert httpx.get(f"{url}{LIVE}", timeout=30).status_code == 200  # answered once released
    assert isinstance(health, httpx.TimeoutException)
    np.testing.assert_allclose(probabilities, expected(registry, X[:3]), atol=1e-5)
    assert gate.threads and not any(name.startswith(WORKER_THREAD_PREFIX) for name in gate.threads)


def answers(url: str, batches: list[np.ndarray]) -> list[np.ndarray]:
    with httpx.Client(timeout=30) as client:
        replies = [client.post(f"{url}{INFER}", json=infer_body(x)) for x in batches]
    return [np.array(r.json()["outputs"][0]["data"]).reshape(len(x), -1) for r, x in zip(replies, batches, strict=True)]


def test_offloaded_answers_equal_the_in_loop_ones(registry: Registry, tmp_path: Path) -> None:
    batches = [X[:1], X[1:6], X[6:23], X[23:87]]
    with serving(app_for(registry, tmp_path / "in-loop", forward_offload=Offload.OFF)) as url:
        in_loop = answers(url, batches)
    with serving(app_for(registry, tmp_path / "offloaded", forward_offload=Offload.ON)) as url:
        offloaded = answers(url, batches)
    for a, b in zip(in_loop, offloaded, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.anyio
async def test_offloaded_concurrent_requests_each_get_their_own_rows(registry: Registry, tmp_path: Path) -> None:
    """Many requests batched together in the worker: each answer is its own rows' prediction."""
    rows = [X[3 * k : 3 * k + 1 + k % 3] for k in range(40)]  # 1, 2 or 3 rows each
    got: dict[int, np.ndarray] = {}
    with serving(app_for(registry, tmp_path, forward_offload=Offload.ON)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def ask(i: int) -> None:
                reply = await client.post(INFER, json=infer_body(rows[i]))
                got[i] = np.array(reply.json()["outputs"][0]["data"]).reshape(len(rows[i]), -1)

            async with anyio.create_task_group() as group:
                for i in range(len(rows)):
                    group.start_soon(ask, i)
    for i, x in enumerate(rows):
        np.testing.assert_allclose(got[i], expected(registry, x), atol=1e-5)


def test_a_model_failure_in_the_worker_is_the_callers_500_and_the_worker_goes_on(
    registry: Registry, tmp_path: Path
) -> None:
    gate = Gate()
    with serving(gated_app(registry, tmp_path, gate, forward_offload=Offload.ON)) as url:
        gate.fail_next = True
        failed = httpx.post(f"{url}{INFER}", json=infer_body(X[:2]), timeout=30)
        after = httpx.post(f"{url}{INFER}", json=infer_body(X[:2]), timeout=30)
        assert len(worker_threads()) == 1
    assert failed.status_code == 500 and failed.json() == {"error": "internal error"}
    assert after.status_code == 200 and len(after.json()["outputs"][0]["data"]) == 20
    assert len(gate.threads) == 2 and gate.threads[0] == gate.threads[1], "one worker ran both"


def test_shutdown_ends_the_worker_thread(registry: Registry, tmp_path: Path) -> None:
    with serving(app_for(registry, tmp_path, forward_offload=Offload.ON)) as url:
        assert httpx.post(f"{url}{INFER}", json=infer_body(X[:1]), timeout=30).status_code == 200
        assert len(worker_threads()) == 1
    assert worker_threads() == []


@pytest.mark.anyio
async def test_a_model_on_cuda_gets_the_worker_and_the_cuda_batch_cap(registry: Registry, tmp_path: Path) -> None:
    """By default (offload auto) a CUDA model's forwards leave the loop, and its batches grow to
    the CUDA cap: one forward held while 40 requests queue, then they go as one batch of 40
    (the CPU cap, 8, would have made five)."""
    gate = Gate()
    app = gated_app(registry, tmp_path, gate, claims_cuda=True, max_batch_size=CPU_CAP, cuda_max_batch_size=64)
    with serving(app) as url:
        gate.release.clear()
        async with httpx.AsyncClient(base_url=url, timeout=60) as client, anyio.create_task_group() as group:
            statuses: list[int] = []

            async def ask(x: np.ndarray) -> None:
                statuses.append((await client.post(INFER, json=infer_body(x))).status_code)

            group.start_soon(ask, X[:1])
            await anyio.to_thread.run_sync(gate.entered.wait, 30)
            for i in range(40):
                group.start_soon(ask, X[i : i + 1])
            metadata = (await client.get(f"/v2/models/{MODEL}")).json()  # the loop answers meanwhile
            routing = app.router.routing
            assert routing is not None
            with anyio.fail_after(30):
                while len(routing.by_name["v1"].batcher) < 40:  # noqa: ASYNC110  (a plain count, no event)
                    await anyio.sleep(0.01)
            gate.release.set()
    assert statuses == [200] * 41
    assert gate.rows == [1, 40]
    assert all(name.startswith(f"{WORKER_THREAD_PREFIX}-cuda") for name in gate.threads)
    assert metadata["parameters"]["devices"] == {"v1": "cuda"}


# ---- the settings --------------------------------------------------------------------------

REQUIRED = ["--region", "r", "--registry-url", "https://models.example"]


def parse(argv: list[str]):
    return parse_serving_args(serving_parser("server", "test", default_variant="fp32"), [*REQUIRED, *argv])[0]


def test_device_settings_default_to_offload_on_cuda_only_and_larger_cuda_batches() -> None:
    chosen = parse([])
    assert (chosen.forward_offload, chosen.cuda_max_batch_size, chosen.cuda_max_batch_wait_ms) == (
        Offload.AUTO,
        256,
        0.0,
    )
    assert Offload.AUTO.applies_to(torch.device("cuda")) and not Offload.AUTO.applies_to(torch.device("cpu"))
    assert Offload.ON.applies_to(torch.device("cpu")) and not Offload.OFF.applies_to(torch.device("cuda", 0))
    batching = DeviceBatching(cpu=BatchingConfig(32), cuda=BatchingConfig(256))
    assert batching.for_device(torch.device("cuda", 1)).max_batch_size == 256
    assert batching.for_device(torch.device("cpu")).max_batch_size == 32


def test_device_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_FORWARD_OFFLOAD, "on")
    monkeypatch.setenv(contract.ENV_CUDA_MAX_BATCH_SIZE, "512")
    monkeypatch.setenv(contract.ENV_CUDA_MAX_BATCH_WAIT_MS, "0.5")
    chosen = parse([])
    assert (chosen.forward_offload, chosen.cuda_max_batch_size, chosen.cuda_max_batch_wait_ms) == (
        Offload.ON,
        512,
        0.5,
    )
    assert parse(["--forward-offload", "off"]).forward_offload is Offload.OFF


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (contract.ENV_FORWARD_OFFLOAD, "gpu", "'gpu' is not one of auto, on, off"),
        (contract.ENV_CUDA_MAX_BATCH_SIZE, "0", "0 is outside 1..4096"),
        (contract.ENV_CUDA_MAX_BATCH_SIZE, "lots", "'lots' is not a valid int"),
        (contract.ENV_CUDA_MAX_BATCH_WAIT_MS, "-1", "-1.0 is outside 0..1000"),
    ],
)
def test_bad_device_settings_stop_the_server_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SystemExit):
        parse([])
    assert f"{message} (from {env})" in capsys.readouterr().err


def test_batching_limits_out_of_range_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"batching max_batch_size must be >= 1, got 0"):
        BatchingConfig(max_batch_size=0)
    with pytest.raises(ValueError, match=r"batching max_wait_s must be >= 0, got -0\.001"):
        BatchingConfig(max_wait_s=-0.001)
