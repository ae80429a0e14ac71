"""Each shipped stack's Kubernetes layer, deployed once per session under mocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from components.config import StackConfig, load_stack
from tests.components.k8s.harness import Resource, deploy
from tests.components.k8s.manifests import api_version_and_kind, manifest


@dataclass
class Deployed:
    config: StackConfig
    resources: list[Resource]
    outputs: dict[str, dict[str, Any]]  # region -> resolved RegionWorkloads outputs

    def objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Kubernetes objects as manifests (integral numbers), optionally of one kind."""
        out = []
        for r in self.resources:
            if api_version_and_kind(r.type) is None:
                continue
            obj = manifest(r.type, r.inputs)
            if kind is None or obj["kind"] == kind:
                out.append(obj)
        return out

    def named(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        matches = [
            o
            for o in self.objects(kind)
            if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name
        ]
        assert len(matches) == 1, f"{len(matches)} {kind} {namespace}/{name}"
        return matches[0]


_cache: dict[str, Deployed] = {}


@pytest.fixture(scope="session")
def deployed(stack: str) -> Deployed:
    if stack not in _cache:
        config = load_stack(stack)
        resources, outputs = deploy(config)
        _cache[stack] = Deployed(config, resources, outputs)
    return _cache[stack]
