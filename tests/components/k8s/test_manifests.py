"""Every Kubernetes object the layer registers is valid for the stack's Kubernetes version."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import manifest


def test_every_object_passes_strict_schema_validation(deployed: Deployed) -> None:
    version = deployed.config.kubernetes_version
    objects = deployed.objects()
    assert len(objects) > 20
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_every_kubernetes_resource_uses_its_regions_explicit_provider(deployed: Deployed) -> None:
    for r in deployed.resources:
        if r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers:"):
            assert r.provider is not None and r.provider.startswith("k8s-"), f"{r.type} {r.name}"


def test_the_validator_rejects_a_misspelled_field() -> None:
    """Strict mode is what catches a nested typo that pyright and the mocks would let through."""
    bad = manifest(
        "kubernetes:core/v1:ConfigMap",
        {"metadata": {"name": "x", "labelz": {"a": "b"}}, "data": {"k": "v"}},
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33", strict=True)


def test_recorded_floats_become_integers() -> None:
    obj = manifest("kubernetes:apps/v1:Deployment", {"spec": {"replicas": 2.0, "x": [1.5, 3.0]}})
    assert obj["spec"] == {"replicas": 2, "x": [1.5, 3]}
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
