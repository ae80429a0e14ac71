"""Namespaces: one per region, and one per cluster add-on we install, each enforcing Pod Security
`restricted` at the cluster's version (KEDA), but the monitoring stack's own, which is privileged
(test_monitoring.py says why)."""

from __future__ import annotations

from components.k8s import keda
from components.k8s.monitoring import MONITORING_NAMESPACE
from components.k8s.namespace import namespace_name, pod_security_labels
from tests.components.k8s.conftest import Deployed

# Namespaces of the add-ons Meridian installs per cluster (their own objects and NetworkPolicies).
ADDON_NAMESPACES = {keda.NAMESPACE, MONITORING_NAMESPACE}


def test_one_restricted_namespace_per_region(deployed: Deployed) -> None:
    namespaces = {
        n["metadata"]["name"]: n for n in deployed.objects("Namespace") if n["metadata"]["name"] != MONITORING_NAMESPACE
    }
    assert set(namespaces) - ADDON_NAMESPACES == {namespace_name(r.name) for r in deployed.config.regions}
    version = f"v{deployed.config.kubernetes_version}"
    for ns in namespaces.values():
        labels = ns["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == version
        assert {"owner", "stack", "cost-center"} <= set(labels)


# Cluster-scoped kinds Meridian creates: namespaces, a cloud cluster's default StorageClass, and
# on EKS Karpenter's GPU NodePool and EC2NodeClass.
CLUSTER_SCOPED = {"Namespace", "StorageClass", "NodePool", "EC2NodeClass"}


def test_every_namespaced_object_lives_in_a_meridian_namespace(deployed: Deployed) -> None:
    for obj in deployed.objects():
        if obj["kind"] not in CLUSTER_SCOPED:
            namespace = obj["metadata"]["namespace"]
            assert namespace.startswith("meridian-") or namespace in ADDON_NAMESPACES, obj["metadata"]["name"]


def test_pod_security_labels_cover_every_mode() -> None:
    assert pod_security_labels("restricted", "1.33") == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.33",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "v1.33",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "v1.33",
    }
