"""Availability: every replicated or autoscaled Deployment (by a KEDA ScaledObject or an HPA:
the inference servers, the edges) has a PDB."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from ..decorators import ADVISORY, stack_rule
from ..props import dig, mapping
from ..stack import of_types
from .autoscaling import scaling_for
from .metadata import cluster_of, labels_of, name_of, namespace_of, selector_matches

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def _covered(args: StackValidationArgs, deployment: PolicyResource) -> bool:
    pod_labels = mapping(dig(deployment.props, "spec", "template", "metadata", "labels"))
    return any(
        namespace_of(pdb.props) == namespace_of(deployment.props)
        and cluster_of(pdb) == cluster_of(deployment)
        and selector_matches(mapping(dig(pdb.props, "spec", "selector")), pod_labels)
        for pdb in of_types(args, PDB)
        if dig(pdb.props, "spec", "selector") is not None
    )


@stack_rule("k8s-pdb-for-replicated-deployments", Severity.MEDIUM, ADVISORY)
def PDB_FOR_REPLICATED(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Every replicated or autoscaled Deployment (inference, edge) has a PodDisruptionBudget."""
    for deployment in of_types(args, DEPLOYMENT):
        replicas = dig(deployment.props, "spec", "replicas")
        replicated = replicas is not None and replicas > 1
        if not (replicated or scaling_for(args, deployment)) or _covered(args, deployment):
            continue
        component = labels_of(deployment.props).get("app.kubernetes.io/component")
        yield (
            (
                f"Deployment {namespace_of(deployment.props)}/{name_of(deployment.props, deployment.name)}"
                f"{f' ({component})' if component else ''} is replicated but no PodDisruptionBudget "
                "selects its pods"
            ),
            deployment.urn,
        )


POLICIES = [PDB_FOR_REPLICATED]
