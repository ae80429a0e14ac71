"""PDBs for replicated or autoscaled Deployments."""

from __future__ import annotations

from policy.rules.kubernetes.availability import PDB_FOR_REPLICATED
from tests.policy.checks import K8S, assert_complies, assert_violates, resource
from tests.policy.rules.kubernetes.workloads import LABELS, deployment

NS = {"namespace": "meridian-inference"}


def pdb(labels: dict[str, str], namespace: str = "meridian-inference"):
    return resource(
        "kubernetes:policy/v1:PodDisruptionBudget",
        "server-pdb",
        K8S,
        metadata={"name": "server", "namespace": namespace},
        spec={"minAvailable": 1, "selector": {"matchLabels": labels}},
    )


def hpa(target: str):
    return resource(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "server-hpa",
        K8S,
        metadata={"name": target, **NS},
        spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}},
    )


def test_a_replicated_deployment_with_a_matching_pdb_complies() -> None:
    assert_complies(PDB_FOR_REPLICATED, deployment(), pdb(LABELS))


def test_a_replicated_deployment_without_a_pdb_violates() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(), containing="(inference) is replicated")


def test_a_pdb_in_another_namespace_does_not_count() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(), pdb(LABELS, "default"), containing="no PodDisruptionBudget")


def test_an_autoscaled_single_replica_deployment_needs_a_pdb() -> None:
    assert_violates(PDB_FOR_REPLICATED, deployment(replicas=1), hpa("server"), containing="server")


def test_a_single_unscaled_replica_needs_none() -> None:
    assert_complies(PDB_FOR_REPLICATED, deployment(replicas=1))
