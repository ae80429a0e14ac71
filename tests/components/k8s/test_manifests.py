"""Every Kubernetes object the layer registers is valid for the stack's Kubernetes version."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.components import custom_resources
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import manifest, pod_spec, pod_template


def test_every_object_passes_strict_schema_validation(deployed: Deployed) -> None:
    """Built-in kinds against Kubernetes' schemas; custom resources (Karpenter's) against their
    CRDs' schemas at the pinned version (tests/components/custom_resources.py)."""
    version = deployed.config.kubernetes_version
    objects = deployed.objects()
    assert len(objects) > 20
    for obj in objects:
        if custom_resources.is_custom(obj):
            custom_resources.validate(obj)
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_every_kubernetes_resource_uses_its_regions_explicit_provider(deployed: Deployed) -> None:
    for r in deployed.resources:
        if r.type.startswith("kubernetes:"):
            assert r.provider is not None, f"{r.type} {r.name} would use the ambient kubeconfig"


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


def test_every_secret_and_config_map_holds_non_empty_values(deployed: Deployed) -> None:
    """Their values come from pulumi-tls keys and certificates: an empty one means a key or
    certificate output never arrived (under mocks: the mock does not answer for pulumi-tls)."""
    for obj in deployed.objects("Secret") + deployed.objects("ConfigMap"):
        values = obj.get("stringData") or obj.get("data") or {}
        assert values and all(isinstance(v, str) and v for v in values.values()), obj["metadata"]["name"]


def test_every_object_carries_the_stacks_required_labels(deployed: Deployed) -> None:
    required = {"owner", "stack", "cost-center"}
    for obj in deployed.objects():
        assert required <= set(obj["metadata"].get("labels") or {}), f"{obj['kind']} {obj['metadata']['name']}"
        template = pod_template(obj)
        if template is not None:
            assert required <= set(template["metadata"]["labels"])


def test_no_pod_runs_as_the_namespaces_default_service_account(deployed: Deployed) -> None:
    for obj in deployed.objects():
        spec = pod_spec(obj)
        if spec is not None:
            assert spec["serviceAccountName"] not in ("", "default"), obj["metadata"]["name"]
