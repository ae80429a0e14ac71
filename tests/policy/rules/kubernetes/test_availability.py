"""PDBs for replicated or autoscaled Deployments."""

from __future__ import annotations

from policy.rules.kubernetes.availability import PDB_FOR_REPLICATED
from tests.policy.checks import assert_complies, assert_violates, namespaced
from tests.policy.rules.kubernetes.workloads import LABELS, deployment

NS = "meridian-inference"


def pdb(labels: dict[str, str], namespace: str = NS):
    spec = {"minAvailable": 1, "selector": {"matchLabels": labels}}
    return namespaced(
        "kubernetes:policy/v1:PodDisruptionBudget", "server", namespace, logical_name="server-pdb", spec=spec
    )


def hpa(target: str):
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}}
    return namespaced(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", target, NS, logical_name="server-hpa", spec=spec
    )


def test_a_replicated_deployment_with_a_matching_pdb_complies() -> None:
    assert_complies(PDB_FOR_REPLICATED, deployment(), pdb(LABELS))


def test_a_replicated_deployment_without_a_pdb_violates() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(), containing="(inference) is replicated")


def test_a_pdb_in_another_namespace_does_not_count() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(), pdb(LABELS, "default"), containing="no PodDisruptionBudget")


def scaled_object(target: str):
    spec = {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 4}  # kind: Deployment
    return namespaced("kubernetes:keda.sh/v1alpha1:ScaledObject", target, NS, logical_name="server-scaling", spec=spec)


def test_an_autoscaled_single_replica_deployment_needs_a_pdb() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(replicas=1), hpa("server"), containing="server")


def test_a_deployment_keda_scales_needs_a_pdb() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(replicas=None), scaled_object("server"), containing="server")
    assert_complies(PDB_FOR_REPLICATED, deployment(replicas=None), scaled_object("server"), pdb(LABELS))


def test_a_scaled_object_for_another_deployment_does_not_count() -> None:
    assert_complies(PDB_FOR_REPLICATED, deployment(replicas=None), scaled_object("edge-nyc"))


def test_a_single_unscaled_replica_needs_none() -> None:
    assert_complies(PDB_FOR_REPLICATED, deployment(replicas=1))
