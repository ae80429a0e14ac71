"""A VPC per GCP region: one node subnet with pod and service ranges, Private Google Access,
Cloud NAT for the private nodes' egress."""

from __future__ import annotations

import ipaddress

import pytest

from components.catalog import Cloud
from components.gcp.network import PODS_RANGE, SERVICES_RANGE, carve
from meridian.mocks import Inventory
from tests.components.cloud_queries import named, regions_on


def test_each_region_has_a_custom_vpc_with_secondary_ranges_and_nat(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        vpc = named(inventory, f"{region.name}-network-vpc", "gcp:compute/network:Network").inputs
        assert vpc["autoCreateSubnetworks"] is False
        subnet = named(inventory, f"{region.name}-network-nodes", "gcp:compute/subnetwork:Subnetwork")
        assert subnet.region == region.name and subnet.inputs["privateIpGoogleAccess"] is True
        ranges = {r["rangeName"] for r in subnet.inputs["secondaryIpRanges"]}
        assert ranges == {PODS_RANGE, SERVICES_RANGE}
        nat = named(inventory, f"{region.name}-network-nat", "gcp:compute/routerNat:RouterNat").inputs
        assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_carving_keeps_ranges_apart() -> None:
    plan = carve("10.7.0.0/16")
    nets = [ipaddress.ip_network(c) for c in (plan.nodes, plan.pods, plan.services)]
    assert all(n.subnet_of(ipaddress.ip_network("10.7.0.0/16")) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert plan.control_plane == "172.16.7.0/28"
    with pytest.raises(ValueError, match="must be a /16"):
        carve("10.7.0.0/17")
