"""GKE: private cluster, Workload Identity, shielded nodes."""

from __future__ import annotations

from typing import Any

from policy.rules.gcp.gke import PRIVATE_CLUSTER, SHIELDED_NODES, WORKLOAD_IDENTITY
from tests.policy.checks import GCP_EU, assert_complies, assert_violates, resource

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
PRIVATE = {"enablePrivateNodes": True, "masterIpv4CidrBlock": "172.16.0.0/28"}
OFFICE = {"cidrBlocks": [{"cidrBlock": "198.51.100.0/24", "displayName": "office"}]}


def cluster(**props: Any):
    return resource(CLUSTER, "gke", GCP_EU, **props)


def pool(**node_config: Any):
    return resource(POOL, "gpu", GCP_EU, nodeConfig=node_config)


def test_private_nodes_and_authorized_networks_comply() -> None:
    assert_complies(PRIVATE_CLUSTER, cluster(privateClusterConfig=PRIVATE, masterAuthorizedNetworksConfig=OFFICE))


def test_a_private_endpoint_needs_no_authorized_networks() -> None:
    assert_complies(PRIVATE_CLUSTER, cluster(privateClusterConfig={**PRIVATE, "enablePrivateEndpoint": True}))


def test_public_nodes_violate() -> None:
    assert_violates(PRIVATE_CLUSTER, cluster(masterAuthorizedNetworksConfig=OFFICE), containing="enablePrivateNodes")


def test_a_control_plane_open_to_the_world_violates() -> None:
    world = {"cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]}
    assert_violates(
        PRIVATE_CLUSTER,
        cluster(privateClusterConfig=PRIVATE, masterAuthorizedNetworksConfig=world),
        containing="open to the world",
    )


def test_a_node_pool_opting_out_of_private_nodes_violates() -> None:
    public = resource(POOL, "edge", GCP_EU, networkConfig={"enablePrivateNodes": False})
    assert_violates(PRIVATE_CLUSTER, public, containing="public IPs")


def test_workload_identity_complies() -> None:
    assert_complies(WORKLOAD_IDENTITY, cluster(workloadIdentityConfig={"workloadPool": "meridian.svc.id.goog"}))
    assert_complies(WORKLOAD_IDENTITY, pool(workloadMetadataConfig={"mode": "GKE_METADATA"}))


def test_no_workload_pool_violates() -> None:
    assert_violates(WORKLOAD_IDENTITY, cluster(), containing="workloadPool")


def test_a_pool_exposing_node_metadata_violates() -> None:
    assert_violates(WORKLOAD_IDENTITY, pool(workloadMetadataConfig={"mode": "GCE_METADATA"}), containing="GCE_METADATA")


def test_secure_boot_and_integrity_monitoring_comply() -> None:
    assert_complies(
        SHIELDED_NODES, pool(shieldedInstanceConfig={"enableSecureBoot": True, "enableIntegrityMonitoring": True})
    )
    assert_complies(SHIELDED_NODES, cluster(enableShieldedNodes=True))


def test_a_pool_without_secure_boot_violates() -> None:
    assert_violates(SHIELDED_NODES, pool(), containing="enableSecureBoot")


def test_a_cluster_turning_shielded_nodes_off_violates() -> None:
    assert_violates(SHIELDED_NODES, cluster(enableShieldedNodes=False), containing="enableShieldedNodes")
