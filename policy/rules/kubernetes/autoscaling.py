"""Autoscaling: what scales a Deployment (a KEDA ScaledObject, or a plain HPA) and within what
bounds. KEDA's ScaledObject defaults `maxReplicaCount` to 100 and an HPA's max is required, so
an unbounded-looking ScaledObject is a GPU bill nobody chose; a Deployment that also states its
`replicas` fights its autoscaler on every update."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from ..decorators import MANDATORY, stack_rule
from ..props import dig, mapping
from ..stack import of_types
from .metadata import cluster_of, name_of, namespace_of

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPAS = ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "kubernetes:autoscaling/v1:HorizontalPodAutoscaler")
AUTOSCALERS = (SCALED_OBJECT, *HPAS)
KEDA_DEFAULT_MAX = 100  # keda-docs reference/scaledobject-spec.md: `maxReplicaCount` "Default: 100"


@dataclass(frozen=True)
class Scaling:
    """One autoscaler's view of its target: (kind, name) in a namespace of a cluster, its bounds."""

    autoscaler: PolicyResource
    kind: str
    name: str
    namespace: str
    cluster: str
    min_replicas: int | None
    max_replicas: int | None  # None: not set (KEDA then allows 100)

    def targets(self, workload: PolicyResource) -> bool:
        return (
            self.kind == "Deployment"
            and workload.resource_type == DEPLOYMENT
            and self.name == name_of(workload.props, workload.name)
            and self.namespace == namespace_of(workload.props)
            and self.cluster == cluster_of(workload)
        )


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def scaling_of(resource: PolicyResource) -> Scaling:
    spec = mapping(resource.props.get("spec"))
    target = mapping(spec.get("scaleTargetRef"))
    keda = resource.resource_type == SCALED_OBJECT
    return Scaling(
        autoscaler=resource,
        kind=str(target.get("kind") or ("Deployment" if keda else "")),  # KEDA's default kind
        name=str(target.get("name") or ""),
        namespace=namespace_of(resource.props),
        cluster=cluster_of(resource),
        min_replicas=_count(spec.get("minReplicaCount" if keda else "minReplicas")),
        max_replicas=_count(spec.get("maxReplicaCount" if keda else "maxReplicas")),
    )


def scalings(args: StackValidationArgs) -> list[Scaling]:
    return [scaling_of(r) for r in of_types(args, *AUTOSCALERS)]


def scaling_for(args: StackValidationArgs, workload: PolicyResource) -> list[Scaling]:
    return [s for s in scalings(args) if s.targets(workload)]


def _where(scaling: Scaling) -> str:
    kind = scaling.autoscaler.resource_type.rsplit(":", 1)[1]
    return f"{kind} {scaling.namespace}/{name_of(scaling.autoscaler.props, scaling.autoscaler.name)}"


@stack_rule("k8s-autoscaling-bounded", Severity.HIGH, MANDATORY)
def AUTOSCALING_BOUNDED(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Every autoscaler names its maximum, scales a Deployment of the stack that leaves its
    replica count to it, and no Deployment has two autoscalers."""
    deployments = of_types(args, DEPLOYMENT)
    every = scalings(args)
    for scaling in every:
        where = _where(scaling)
        urn = scaling.autoscaler.urn
        if scaling.max_replicas is None:
            yield f"{where} sets no maximum (KEDA's default is {KEDA_DEFAULT_MAX} replicas): set maxReplicaCount", urn
        elif scaling.min_replicas is not None and scaling.min_replicas > scaling.max_replicas:
            yield f"{where}: minimum {scaling.min_replicas} exceeds maximum {scaling.max_replicas}", urn
        if not any(scaling.targets(d) for d in deployments):
            yield f"{where} scales {scaling.kind} {scaling.name}, which this stack does not deploy there", urn
    for deployment in deployments:
        scaled_by = [s for s in every if s.targets(deployment)]
        if not scaled_by:
            continue
        what = f"Deployment {namespace_of(deployment.props)}/{name_of(deployment.props, deployment.name)}"
        if len(scaled_by) > 1:
            yield f"{what} has {len(scaled_by)} autoscalers ({', '.join(map(_where, scaled_by))})", deployment.urn
        if dig(deployment.props, "spec", "replicas") is not None:
            yield (
                f"{what} sets replicas while {_where(scaled_by[0])} scales it: every update would undo the autoscaler",
                deployment.urn,
            )


POLICIES = [AUTOSCALING_BOUNDED]
