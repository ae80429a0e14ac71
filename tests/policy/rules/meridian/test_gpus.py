"""GPU allowlist."""

from __future__ import annotations

from policy.rules.meridian.gpus import GPU_ALLOWLIST
from tests.policy.checks import AWS_US, GCP_EU, assert_complies, assert_violates, resource
from tests.policy.karpenter_pools import node_pool
from tests.policy.rules.kubernetes.workloads import deployment


def eks_pool(instance: str):
    return resource("aws:eks/nodeGroup:NodeGroup", "gpu", AWS_US, instanceTypes=[instance])


def test_an_allowed_instance_type_complies() -> None:
    assert_complies(GPU_ALLOWLIST, eks_pool("g5.xlarge"), config={"gpuAllowlist": ["a10g"]})


def test_an_h100_outside_the_allowlist_violates() -> None:
    assert_violates(
        GPU_ALLOWLIST, eks_pool("p5.48xlarge"), config={"gpuAllowlist": ["t4", "a10g"]}, containing="carries h100"
    )


def test_an_unknown_instance_type_violates() -> None:
    assert_violates(GPU_ALLOWLIST, eks_pool("x9.mega"), containing="not in the price table")


def test_a_gke_guest_accelerator_is_checked() -> None:
    pool = resource(
        "gcp:container/nodePool:NodePool",
        "gpu",
        GCP_EU,
        nodeConfig={"machineType": "n1-standard-4", "guestAccelerators": [{"type": "nvidia-tesla-v100", "count": 1}]},
    )
    assert_violates(GPU_ALLOWLIST, pool, config={"gpuAllowlist": ["t4"]}, containing="carries v100")
    assert_complies(GPU_ALLOWLIST, pool, config={"gpuAllowlist": ["v100"]})


def test_a_pod_selecting_an_accelerator_on_an_existing_cluster_is_checked() -> None:
    pinned = deployment(nodeSelector={"meridian.io/accelerator": "a100"})
    assert_violates(GPU_ALLOWLIST, pinned, config={"gpuAllowlist": ["t4"]}, containing="carries a100")


def test_cpu_pools_need_no_allowlist_entry() -> None:
    assert_complies(GPU_ALLOWLIST, eks_pool("m5.large"), config={"gpuAllowlist": ["t4"]})


def test_a_karpenter_node_pool_is_checked_by_its_instance_types() -> None:
    assert_violates(
        GPU_ALLOWLIST, node_pool(["p5.48xlarge"], {}), config={"gpuAllowlist": ["a10g"]}, containing="carries h100"
    )
    assert_complies(GPU_ALLOWLIST, node_pool(["g5.xlarge"], {}), config={"gpuAllowlist": ["a10g"]})


def test_a_karpenter_node_pool_allowing_any_instance_type_violates() -> None:
    assert_violates(GPU_ALLOWLIST, node_pool([], {}), containing="allowing any instance type")
