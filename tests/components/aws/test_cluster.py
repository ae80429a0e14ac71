"""EKS per AWS region, as every shipped stack asks: a private or CIDR-restricted API, secrets
under a rotated customer key, control-plane logs, and the node groups the stack sizes (GPU
nodes are Karpenter's: test_karpenter.py)."""

from __future__ import annotations

from components.aws.cluster import CONTROL_PLANE_LOGS
from components.catalog import Cloud
from components.cluster_access import EDGE_SITE_LABEL, POOL_LABEL
from meridian.mocks import Inventory
from tests.components.aws.arns import key_arn
from tests.components.cloud_queries import config_of, mock_id, named, regions_on

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def test_each_aws_region_has_one_cluster_in_that_region(stack: str, inventory: Inventory) -> None:
    regions = regions_on(stack, Cloud.AWS)
    clusters = inventory.of_type(CLUSTER)
    assert sorted(c.region or "" for c in clusters) == sorted(r.name for r in regions)
    for region in regions:
        cluster = named(inventory, f"{region.name}-eks", CLUSTER)
        assert cluster.provider == f"aws-{region.name}"
        assert cluster.inputs["version"] == config_of(stack).kubernetes_version


def test_api_endpoint_is_private_or_restricted_to_the_stacks_cidrs(stack: str, inventory: Inventory) -> None:
    cidrs = config_of(stack).network.api_allowed_cidrs
    for region in regions_on(stack, Cloud.AWS):
        vpc = named(inventory, f"{region.name}-eks", CLUSTER).inputs["vpcConfig"]
        assert vpc["endpointPrivateAccess"] is True
        if cidrs:
            assert vpc["endpointPublicAccess"] is True
            assert vpc["publicAccessCidrs"] == cidrs
            assert "0.0.0.0/0" not in vpc["publicAccessCidrs"]
        else:
            assert vpc["endpointPublicAccess"] is False
            assert "publicAccessCidrs" not in vpc


def test_secrets_are_encrypted_with_a_rotated_customer_key_and_logs_are_on(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        cluster = named(inventory, f"{region.name}-eks", CLUSTER).inputs
        key = named(inventory, f"{region.name}-eks-secrets-key", "aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True and key.region == region.name
        (encryption,) = [cluster["encryptionConfig"]]
        assert encryption["resources"] == ["secrets"]
        assert encryption["provider"]["keyArn"] == key_arn(key)
        assert set(CONTROL_PLANE_LOGS) <= set(cluster["enabledClusterLogTypes"])
        assert {"api", "audit", "authenticator"} <= set(cluster["enabledClusterLogTypes"])


def test_a_small_system_group_runs_without_gpu_taints(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        system = named(inventory, f"{region.name}-eks-system", NODE_GROUP).inputs
        assert system["labels"][POOL_LABEL] == "system"
        assert system["amiType"] == "AL2023_x86_64_STANDARD"
        assert system["instanceTypes"] == [region.system_machine]
        assert not system.get("taints")


def test_each_edge_site_has_a_cpu_group_in_its_local_zone_subnet(stack: str, inventory: Inventory) -> None:
    groups = [g for g in inventory.of_type(NODE_GROUP) if g.inputs["labels"].get(POOL_LABEL) == "edge"]
    sites = [(r, s) for r in regions_on(stack, Cloud.AWS) for s in r.edge_sites]
    assert len(groups) == len(sites)
    for region, site in sites:
        group = named(inventory, f"{region.name}-eks-edge-{site.name}", NODE_GROUP).inputs
        subnet = named(inventory, f"{region.name}-network-edge-{site.name}", "aws:ec2/subnet:Subnet")
        assert subnet.inputs["availabilityZone"] == site.location
        assert group["subnetIds"] == [mock_id(subnet)]
        assert group["instanceTypes"] == [region.edge_machine(site)]
        assert group["scalingConfig"]["desiredSize"] == site.capacity
        assert group["labels"][EDGE_SITE_LABEL] == site.name
        assert {"key": EDGE_SITE_LABEL, "value": site.name, "effect": "NO_SCHEDULE"} in group["taints"]
        assert group["amiType"] == "AL2023_x86_64_STANDARD"


def test_vpc_cni_enforces_network_policies(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        addon = named(inventory, f"{region.name}-eks-vpc-cni", "aws:eks/addon:Addon").inputs
        assert addon["addonName"] == "vpc-cni"
        assert '"enableNetworkPolicy": "true"' in addon["configurationValues"]
