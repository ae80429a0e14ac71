"""Cost ceiling: GPUs and $/hour at maximum scale."""

from __future__ import annotations

from policy.rules.meridian.cost import COST_CEILING
from tests.policy.checks import AWS_US, assert_complies, assert_violates, namespaced, resource
from tests.policy.karpenter_pools import node_pool


def pool(maximum: int, instance: str = "g5.xlarge"):
    return resource(
        "aws:eks/nodeGroup:NodeGroup",
        f"gpu-{maximum}",
        AWS_US,
        instanceTypes=[instance],
        scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": maximum},
        capacityType="ON_DEMAND",
    )


def test_a_fleet_within_its_limits_complies() -> None:
    assert_complies(COST_CEILING, pool(4), config={"maxGpus": 4, "maxUsdPerHour": 5})


def test_too_many_gpus_at_maximum_scale_violate() -> None:
    assert_violates(COST_CEILING, pool(8), config={"maxGpus": 4}, containing="8 GPUs at maximum scale exceed maxGpus 4")


def test_too_many_dollars_per_hour_violate() -> None:
    # 8 x g5.xlarge on demand in us-east-1 is 8 x $1.006.
    assert_violates(COST_CEILING, pool(8), config={"maxUsdPerHour": 8.0}, containing="$8.05/hour")


def test_a_machine_the_table_cannot_price_violates() -> None:
    assert_violates(COST_CEILING, pool(1, "x9.mega"), containing="cannot price")


def test_the_defaults_come_from_the_schema() -> None:
    assert_violates(COST_CEILING, pool(65, "g4dn.xlarge"), containing="exceed maxGpus 64")


def test_karpenter_gpu_limits_count_toward_the_ceiling() -> None:
    """With EKS's GPU node groups replaced by Karpenter, the NodePool's limit is what bounds GPUs."""
    pool = node_pool(["g5.xlarge"], {"nvidia.com/gpu": 8}, ["spot", "on-demand"])
    assert_violates(COST_CEILING, pool, config={"maxGpus": 4}, containing="8 GPUs at maximum scale exceed maxGpus 4")
    assert_complies(COST_CEILING, pool, config={"maxGpus": 8, "maxUsdPerHour": 9})


def test_a_karpenter_pool_without_a_gpu_limit_violates() -> None:
    assert_violates(COST_CEILING, node_pool(["g5.xlarge"], {}), containing="no `nvidia.com/gpu` or `nodes` limit")


def test_gpu_workloads_scaled_past_the_gpu_ceiling_violate_even_without_node_pools() -> None:
    """An existing cluster has no pool to price: its ScaledObject's maximum is the bound."""
    container = {"name": "server", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    server = namespaced(
        "kubernetes:apps/v1:Deployment",
        "server",
        "meridian-fra",
        spec={"template": {"spec": {"containers": [container]}}},
    )
    scaling = namespaced(
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "server",
        "meridian-fra",
        logical_name="server-scaling",
        spec={"scaleTargetRef": {"name": "server"}, "minReplicaCount": 1, "maxReplicaCount": 12},
    )
    assert_violates(
        COST_CEILING,
        server,
        scaling,
        config={"maxGpus": 8},
        containing="GPU workloads request 12 GPUs at maximum scale, over maxGpus 8",
    )
    assert_complies(COST_CEILING, server, scaling, config={"maxGpus": 12})
