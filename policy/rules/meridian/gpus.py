"""GPUs: every GPU pool's accelerator is in the stack's allowlist (`limits.gpuAllowlist`): node
groups and pools by their machine types, Karpenter NodePools by their instance-type requirement."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, Severity

from ..config_schema import string_list
from ..decorators import MANDATORY, resource_rule
from ..kubernetes.pod_specs import WORKLOAD_TYPES, pod_spec
from ..pricing import (
    EKS_NODE_GROUP,
    GKE_NODE_POOL,
    INSTANCE_TYPE_LABEL,
    KARPENTER_NODE_POOL,
    gpu_accelerator,
    machine,
    node_pool_requirement,
)
from ..props import items, mapping

ALL_ACCELERATORS = ["t4", "l4", "a10g", "v100", "a100", "h100"]
# components/cluster_access.py ACCELERATOR_LABEL: on existing clusters pods pick GPUs by this label.
ACCELERATOR_LABEL = "meridian.io/accelerator"
ALLOWLIST_SCHEMA = PolicyConfigSchema(
    properties={
        "gpuAllowlist": string_list(
            ALL_ACCELERATORS,
            "accelerators the stack may run (stack config limits.gpuAllowlist)",
            allowed=ALL_ACCELERATORS,
        )
    }
)


def _accelerators(args: ResourceValidationArgs) -> Iterator[tuple[str, str | None]]:
    """(what, accelerator or None when the machine is unknown) for each GPU the resource uses."""
    if args.resource_type in (EKS_NODE_GROUP, KARPENTER_NODE_POOL):
        instance_types = (
            items(args.props.get("instanceTypes"))
            if args.resource_type == EKS_NODE_GROUP
            else node_pool_requirement(args.props, INSTANCE_TYPE_LABEL)
        )
        if not instance_types and args.resource_type == KARPENTER_NODE_POOL:
            yield f"a NodePool allowing any instance type (no `{INSTANCE_TYPE_LABEL}` requirement)", None
        for machine_type in instance_types:
            known = machine("aws", str(machine_type))
            if known is None:
                yield f"instance type {machine_type}", None
            elif known.accelerator:
                yield f"instance type {machine_type}", known.accelerator
    elif args.resource_type == GKE_NODE_POOL:
        config = mapping(args.props.get("nodeConfig"))
        known = machine("gcp", str(config.get("machineType")))
        if known is None:
            yield f"machine type {config.get('machineType')}", None
        elif known.accelerator:
            yield f"machine type {config.get('machineType')}", known.accelerator
        for guest in items(config.get("guestAccelerators")):
            priced = gpu_accelerator("gcp", str(mapping(guest).get("type")))
            yield f"guest accelerator {mapping(guest).get('type')}", priced[1] if priced else None
    else:
        selector = mapping(pod_spec(args.resource_type, args.props).get("nodeSelector"))
        if ACCELERATOR_LABEL in selector:
            yield f"nodeSelector {ACCELERATOR_LABEL}", str(selector[ACCELERATOR_LABEL])


@resource_rule(
    "meridian-gpu-allowlist",
    Severity.HIGH,
    MANDATORY,
    types=[EKS_NODE_GROUP, GKE_NODE_POOL, KARPENTER_NODE_POOL, *WORKLOAD_TYPES],
    config_schema=ALLOWLIST_SCHEMA,
)
def GPU_ALLOWLIST(args: ResourceValidationArgs) -> Iterator[str]:
    """GPU node pools and GPU workloads use only the stack's allowed accelerators."""
    allowed = [str(a) for a in items(args.get_config().get("gpuAllowlist"))]
    for what, accelerator in _accelerators(args):
        if accelerator is None:
            yield f"{what} is not in the price table, so its GPU cannot be checked"
        elif accelerator not in allowed:
            yield f"{what} carries {accelerator}, not in the allowlist ({', '.join(allowed)})"


POLICIES = [GPU_ALLOWLIST]
