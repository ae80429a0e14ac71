"""What the serving tests share: a real signed registry with trained digits models, servers
run in-process on a free loopback port, and V2 request builders."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from prometheus_client import generate_latest
from sklearn.datasets import load_digits

from workloads import contract
from workloads.processes import NotReady, wait_ready
from workloads.registry import ArtifactId, Variant, generate_keypair, publish
from workloads.registry.variants import quantize_int8
from workloads.serving.admin_token import AdminToken
from workloads.serving.app import Answerer, InferenceApp, Role
from workloads.serving.metrics import ServingMetrics
from workloads.serving.runner import CERTIFICATE_CHECK_SECONDS, Listener, Listeners, bind, build_app
from workloads.serving.settings import ServingSettings
from workloads.tasks import load_task, train

MODEL = "meridian"
REGION = "test-region"
TASK = load_task("digits")
INFER = f"/v2/models/{MODEL}/infer"  # the V2 inference path of the test model
ADMIN_TOKEN = "test-token"
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
LOAD = f"/v2/repository/models/{MODEL}/load"  # the repository API, on the admin listener


def digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_digits(return_X_y=True)
    return (images / 16.0).astype(np.float32), labels.astype(np.int64)


def trained_model(seed: int) -> torch.nn.Module:
    """A digits MLP trained on the first 1,400 images (~1 s, so cached per process)."""
    model = TASK.build_model()
    model.load_state_dict(_trained_weights(seed))
    return model.eval()


@functools.cache
def _trained_weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = TASK.build_model()
    x, y = digits()
    train(model, x[:1400], y[:1400], epochs=8, seed=seed)
    return model.state_dict()


@dataclass
class Registry:
    """A file:// registry signed with a fresh key; `publish` adds a version."""

    root: Path
    signing_key: Path
    trusted_key: Path
    models: dict[int, torch.nn.Module] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def model(self, seed: int) -> torch.nn.Module:
        if seed not in self.models:
            self.models[seed] = trained_model(seed)
        return self.models[seed]

    def publish(self, version: str, seed: int, variant: Variant = Variant.FP32) -> None:
        model = self.model(seed)
        if variant is Variant.INT8:
            model = quantize_int8(model)
        publish(
            model,
            TASK,
            self.url,
            self.signing_key,
            artifact=ArtifactId(MODEL, version, REGION, variant),
            parent_version=version,
        )

    def artifact_dir(self, version: str, variant: Variant = Variant.FP32) -> Path:
        return self.root / ArtifactId(MODEL, version, REGION, variant).path


def make_registry(
    tmp: Path, seeds: Mapping[str, int] | None = None, variants: Sequence[Variant] = (Variant.FP32,)
) -> Registry:
    """A registry under `tmp` with each version of `seeds` (version -> training seed) published in
    each of `variants`."""
    root = tmp / "registry"
    root.mkdir()
    signing_key, trusted_key = generate_keypair(tmp / "keys")
    registry = Registry(root, signing_key, trusted_key)
    for version, seed in (seeds or {}).items():
        for variant in variants:
            registry.publish(version, seed, variant)
    return registry


def settings(registry: Registry, cache: Path, **overrides: Any) -> ServingSettings:
    defaults = ServingSettings(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        model_name=MODEL,
        region=REGION,
        registry_url=registry.url,
        trusted_key=registry.trusted_key,
        variant="fp32",
        stable="v1",
        candidate=None,
        candidate_weight=0,
        max_batch_size=32,
        max_batch_wait_ms=1.0,
        queue_capacity=256,
        max_body_bytes=1 << 20,
        cache_dir=cache,
        reload_interval_s=30.0,
        torch_threads=1,
        tls_cert_file=None,
        tls_key_file=None,
        escalation_port=0,
        escalation_cert_file=None,
        escalation_key_file=None,
        escalation_client_ca_file=None,
        admin_port=0,
        admin_token=AdminToken(value=ADMIN_TOKEN),
    )
    return replace(defaults, **overrides)


def app_for(
    registry: Registry,
    cache: Path,
    *,
    answerer: Answerer | None = None,
    metrics: ServingMetrics | None = None,
    **overrides: Any,
) -> InferenceApp:
    return build_app(
        settings(registry, cache, **overrides), server_name="meridian-test", metrics=metrics, answerer=answerer
    )


@dataclass(frozen=True)
class Urls:
    """Base URLs of a running server's listeners (None: not listening)."""

    public: str
    admin: str | None
    escalation: str | None


PLAIN = (Listener(Role.PUBLIC, 0, None), Listener(Role.ADMIN, 0, None))


@contextmanager
def listening(
    app: InferenceApp,
    listeners: Sequence[Listener] = PLAIN,
    ready_timeout_s: float = 30.0,
    certificate_check_s: float = CERTIFICATE_CHECK_SECONDS,
) -> Iterator[Urls]:
    """Run `app` behind `listeners` (free loopback ports) as the server process does (one event
    loop, here in a background thread); yield their URLs once a model is loaded; always stop."""
    group = Listeners(app, [(listener, bind("127.0.0.1", listener)) for listener in listeners], certificate_check_s)
    thread = threading.Thread(target=asyncio.run, args=(group.serve(),), daemon=True)
    thread.start()
    urls = {
        listener.role: f"{'https' if listener.tls else 'http'}://127.0.0.1:{group.port(listener.role)}"
        for listener in listeners
    }
    try:
        wait_ready(None, lambda: group.started and app.router.ready, ready_timeout_s, poll=0.05)
        yield Urls(urls[Role.PUBLIC], urls.get(Role.ADMIN), urls.get(Role.ESCALATION))
    finally:
        group.stop()
        thread.join(timeout=15)


@contextmanager
def serving(app: InferenceApp, ready_timeout_s: float = 30.0) -> Iterator[str]:
    """`listening` on the public and admin listeners; yields the public URL."""
    with listening(app, ready_timeout_s=ready_timeout_s) as urls:
        yield urls.public


@contextmanager
def metrics_listener(metrics: ServingMetrics) -> Iterator[str]:
    """The metrics port of an in-process server, on a free loopback port: yields its URL."""
    server = metrics.serve("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_port}{contract.METRICS_PATH}"
    finally:
        server.shutdown()
        server.server_close()


def exposition(metrics: ServingMetrics) -> str:
    """What a scrape of the metrics port returns, read in-process."""
    return generate_latest(metrics.registry).decode()


def infer_body(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}],
        **extra,
    }


async def started(app: InferenceApp, timeout_s: float = 30.0) -> None:
    """Run the app's startup (as uvicorn's lifespan would) and wait until a model is loaded."""
    await app.startup()
    deadline = time.monotonic() + timeout_s
    while not app.router.ready:
        if time.monotonic() > deadline:
            raise TimeoutError("model not loaded")
        await asyncio.sleep(0.01)


def asgi_client(app: InferenceApp, role: Role = Role.PUBLIC) -> httpx.AsyncClient:
    """A client of one of the app's listeners, in-process (no socket)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.listener(role)), base_url="http://server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(registry: Registry, port: int, cache: Path, **extra: str) -> dict[str, str]:
    """The environment Kubernetes would give a server container (names from the contract), its
    metrics on a free port of their own."""
    return {
        "PATH": os.environ.get("PATH", ""),
        contract.ENV_HTTP_PORT: str(port),
        contract.ENV_METRICS_PORT: str(free_port()),
        contract.ENV_REGION: REGION,
        contract.ENV_MODEL_NAME: MODEL,
        contract.ENV_REGISTRY_URL: registry.url,
        contract.ENV_TRUSTED_KEY: str(registry.trusted_key),
        contract.ENV_STABLE_VERSION: "v1",
        contract.ENV_CACHE_DIR: str(cache),
        **extra,
    }


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    metrics_url: str
    output: str | None = None

    def stop(self) -> str:
        """SIGTERM, wait (kill after 20 s); return the process's output. Idempotent."""
        if self.output is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.output = self.process.communicate(timeout=20)[0]
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.output = self.process.communicate()[0]
        return self.output


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], cwd: Path, ready_timeout_s: float = 120.0
) -> Iterator[ServerProcess]:
    """Start a server process, wait until it is ready, always stop it."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = ServerProcess(
        process,
        f"http://127.0.0.1:{env[contract.ENV_HTTP_PORT]}",
        f"http://127.0.0.1:{env[contract.ENV_METRICS_PORT]}{contract.METRICS_PATH}",
    )
    try:
        try:
            wait_ready(process, f"{server.url}{contract.READINESS_PATH}", ready_timeout_s)
        except NotReady as err:
            raise AssertionError(f"{command} {err}:\n{server.stop()}") from None
        yield server
    finally:
        server.stop()
