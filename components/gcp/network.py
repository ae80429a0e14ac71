"""A region's VPC: one subnet for nodes with secondary ranges for pods and services, Private
Google Access, and Cloud NAT for egress (nodes have no public IPs)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


@dataclass(frozen=True)
class Addressing:
    nodes: str
    pods: str
    services: str
    control_plane: str  # the GKE control plane's /28 peering range


def carve(cidr: str) -> Addressing:
    """The region's /16: nodes /20, pods /18, services /20; the control plane's /28 from
    172.16/16 at the same offset, so no two regions of a stack overlap."""
    net = ipaddress.ip_network(cidr)
    if net.prefixlen != 16:
        raise ValueError(f"a region's network must be a /16, got {cidr}")
    quarters = list(net.subnets(new_prefix=18))
    offset = int(net.network_address.packed[1])
    return Addressing(
        nodes=str(next(quarters[0].subnets(new_prefix=20))),
        pods=str(quarters[1]),
        services=str(next(quarters[2].subnets(new_prefix=20))),
        control_plane=f"172.16.{offset}.0/28",
    )


@dataclass(frozen=True)
class GcpNetworkArgs:
    region: str
    project: str
    cidr: str


class GcpNetwork(pulumi.ComponentResource):
    network: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    addressing: Addressing

    def __init__(self, name: str, args: GcpNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GcpNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.addressing = carve(args.cidr)
        self.network = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-nodes",
            project=args.project,
            region=args.region,
            network=self.network.id,
            ip_cidr_range=self.addressing.nodes,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=self.addressing.pods),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICES_RANGE, ip_cidr_range=self.addressing.services
                ),
            ],
            private_ip_google_access=True,  # pull from Artifact Registry, read GCS, without NAT
            log_config=gcp.compute.SubnetworkLogConfigArgs(aggregation_interval="INTERVAL_5_MIN", flow_sampling=0.5),
            opts=child,
        )
        router = gcp.compute.Router(
            f"{name}-router", project=args.project, region=args.region, network=self.network.id, opts=child
        )
        gcp.compute.RouterNat(
            f"{name}-nat",
            project=args.project,
            region=args.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        self.register_outputs({"network": self.network.id, "subnet": self.subnet.id})
