"""GKE: private nodes and a restricted control plane, Workload Identity, shielded nodes."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import dig, items, mapping, world_cidr

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"


@resource_rule("gcp-gke-private-cluster", Severity.CRITICAL, MANDATORY, types=[CLUSTER, NODE_POOL])
def PRIVATE_CLUSTER(args: ResourceValidationArgs) -> Iterator[str]:
    """GKE nodes have no public IPs and the control plane admits only named CIDRs."""
    if args.resource_type == NODE_POOL:
        if dig(args.props, "networkConfig", "enablePrivateNodes") is False:
            yield "networkConfig.enablePrivateNodes is false: nodes would get public IPs"
        return
    private = mapping(args.props.get("privateClusterConfig"))
    if private.get("enablePrivateNodes") is not True:
        yield "privateClusterConfig.enablePrivateNodes must be true"
    if private.get("enablePrivateEndpoint") is True:
        return
    networks = mapping(args.props.get("masterAuthorizedNetworksConfig"))
    cidrs = [str(dig(block, "cidrBlock")) for block in items(networks.get("cidrBlocks"))]
    if not networks or not cidrs:
        yield "the control plane's public endpoint has no masterAuthorizedNetworksConfig CIDRs"
    for cidr in cidrs:
        if world_cidr(cidr):
            yield f"masterAuthorizedNetworksConfig admits {cidr}: the control plane is open to the world"
    if networks.get("gcpPublicCidrsAccessEnabled") is True:
        yield "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled admits every GCP address"


@resource_rule("gcp-gke-workload-identity", Severity.HIGH, MANDATORY, types=[CLUSTER, NODE_POOL])
def WORKLOAD_IDENTITY(args: ResourceValidationArgs) -> Iterator[str]:
    """GKE clusters use Workload Identity and node pools expose only the GKE metadata server."""
    if args.resource_type == CLUSTER:
        if not dig(args.props, "workloadIdentityConfig", "workloadPool"):
            yield "workloadIdentityConfig.workloadPool is not set"
        return
    mode = dig(args.props, "nodeConfig", "workloadMetadataConfig", "mode")
    if mode is not None and mode != "GKE_METADATA":
        yield f"nodeConfig.workloadMetadataConfig.mode is {mode}: pods would see the node's identity"


@resource_rule("gcp-gke-shielded-nodes", Severity.MEDIUM, MANDATORY, types=[CLUSTER, NODE_POOL])
def SHIELDED_NODES(args: ResourceValidationArgs) -> Iterator[str]:
    """GKE nodes are shielded: secure boot and integrity monitoring on."""
    if args.resource_type == CLUSTER:
        if args.props.get("enableShieldedNodes") is False:
            yield "enableShieldedNodes is false"
        return
    shielded = mapping(dig(args.props, "nodeConfig", "shieldedInstanceConfig"))
    if shielded.get("enableSecureBoot") is not True:
        yield "nodeConfig.shieldedInstanceConfig.enableSecureBoot must be true"
    if shielded.get("enableIntegrityMonitoring") is False:
        yield "nodeConfig.shieldedInstanceConfig.enableIntegrityMonitoring is false"


POLICIES = [PRIVATE_CLUSTER, WORKLOAD_IDENTITY, SHIELDED_NODES]
