"""Each shipped stack's Kubernetes layer under mocks, from two sources:

- "components": components/k8s and the image builds alone, with a ClusterAccess per region
  made by tests/components/k8s/harness.py (independent of the cloud layers);
- "program": the whole Pulumi program (`meridian.preview`), as `pulumi up` would run it.
Every test in this folder runs against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from components.config import StackConfig, load_stack
from meridian.preview import Inventory
from tests.components.k8s.harness import access_for, deploy
from tests.components.k8s.manifests import api_version_and_kind, manifest

SOURCES = ["components", "program"]


class Registered(Protocol):
    type: str
    name: str
    provider: str | None
    inputs: dict[str, Any]
    secret_inputs: list[tuple[str | int, ...]]  # where the inputs arrive as Pulumi secrets


@dataclass
class Deployed:
    config: StackConfig
    resources: list[Registered]
    superlink_address: str
    metrics_receiver_address: str | None  # the home's, with a global view
    inference_endpoints: dict[str, str]  # region -> load balancer host or IP
    image_registries: dict[str, str]  # region -> where its images were pushed
    model_registry_urls: dict[str, str]
    edge_endpoints: dict[str, dict[str, str]] | None  # None: the source does not export them

    def __post_init__(self) -> None:
        self._manifests = [
            manifest(r.type, r.inputs) for r in self.resources if api_version_and_kind(r.type) is not None
        ]

    def objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Kubernetes objects as manifests (integral numbers), optionally of one kind."""
        return [o for o in self._manifests if kind is None or o["kind"] == kind]

    def named(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        matches = [
            o
            for o in self.objects(kind)
            if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name
        ]
        assert len(matches) == 1, f"{len(matches)} {kind} {namespace}/{name}"
        return matches[0]


def _from_components(config: StackConfig) -> Deployed:
    resources, outputs = deploy(config)
    regions = config.regions
    accesses = {r.name: access_for(r) for r in regions}
    return Deployed(
        config=config,
        resources=list(resources),
        superlink_address=outputs[config.home]["superlinkAddress"],
        metrics_receiver_address=outputs[config.home]["metricsReceiverAddress"],
        inference_endpoints={r.name: outputs[r.name]["inferenceEndpoint"] for r in regions},
        image_registries={n: str(a.image_registry) for n, a in accesses.items()},
        model_registry_urls={n: str(a.models.read_url) for n, a in accesses.items()},
        edge_endpoints={r.name: outputs[r.name]["edge_endpoints"] for r in regions},
    )


def _from_program(config: StackConfig, inventory: Inventory) -> Deployed:
    regions = inventory.outputs["regions"]
    return Deployed(
        config=config,
        resources=list(inventory.resources),
        superlink_address=inventory.outputs["superlinkAddress"],
        metrics_receiver_address=inventory.outputs.get("metricsReceiverAddress"),
        inference_endpoints={n: r["inferenceEndpoint"] for n, r in regions.items()},
        image_registries={n: r["imageRegistry"] for n, r in regions.items()},
        model_registry_urls={n: r["modelRegistryUrl"] for n, r in regions.items()},
        edge_endpoints=None,
    )


_cache: dict[tuple[str, str], Deployed] = {}


@pytest.fixture(params=SOURCES, scope="session")
def source(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def deployed(stack: str, source: str, inventory_of) -> Deployed:
    key = (stack, source)
    if key not in _cache:
        config = load_stack(stack)
        _cache[key] = _from_components(config) if source == "components" else _from_program(config, inventory_of(stack))
    return _cache[key]
