"""A Karpenter NodePool as the program registers it (components/aws/karpenter.py), for the rules."""

from __future__ import annotations

from typing import Any

from policy.harness import Resource
from tests.policy.checks import K8S, resource

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def node_pool(
    instance_types: list[str],
    limits: dict[str, Any],
    capacity: list[str] | None = None,
    name: str = "us-east-1-karpenter-gpu-pool",
) -> Resource:
    requirements: list[dict[str, Any]] = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": instance_types}
    ]
    if capacity is not None:
        requirements.append({"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity})
    return resource(
        NODE_POOL,
        name,
        K8S,
        metadata={"name": "gpu"},
        spec={"template": {"spec": {"requirements": requirements}}, "limits": limits},
    )
