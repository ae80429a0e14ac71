"""A VPC per AWS region: private subnets over two AZs behind a NAT each, public subnets only
for load balancers, and a Local Zone subnet per edge site, opted in."""

from __future__ import annotations

import ipaddress

import pytest

from components.aws.network import AZ_COUNT, carve, local_zone_group
from components.catalog import Cloud
from meridian.mocks import Inventory
from tests.components.cloud_queries import named, of_type, regions_on, under

SUBNET = "aws:ec2/subnet:Subnet"


def test_private_subnets_span_two_zones_and_route_through_nat(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        network = under(inventory, f"{region.name}-network")
        assert all(r.region == region.name for r in network if r.custom)
        private = [named(inventory, f"{region.name}-network-private-{i}", SUBNET) for i in range(AZ_COUNT)]
        zones = {s.inputs["availabilityZone"] for s in private}
        assert len(zones) == AZ_COUNT and all(z.startswith(region.name) for z in zones)
        assert len(of_type(network, "aws:ec2/natGateway:NatGateway")) == AZ_COUNT
        for i in range(AZ_COUNT):
            routes = named(inventory, f"{region.name}-network-private-{i}", "aws:ec2/routeTable:RouteTable")
            assert [r["cidrBlock"] for r in routes.inputs["routes"]] == ["0.0.0.0/0"]
            assert "natGatewayId" in routes.inputs["routes"][0]
        public = [named(inventory, f"{region.name}-network-public-{i}", SUBNET) for i in range(AZ_COUNT)]
        assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in public)


def test_each_edge_site_gets_an_opted_in_local_zone_subnet(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        for site in region.edge_sites:
            subnet = named(inventory, f"{region.name}-network-edge-{site.name}", SUBNET)
            assert subnet.inputs["availabilityZone"] == site.location
            group = named(
                inventory,
                f"{region.name}-network-{site.name}-zone-group",
                "aws:ec2/availabilityZoneGroup:AvailabilityZoneGroup",
            )
            assert group.inputs == {"groupName": local_zone_group(site.location), "optInStatus": "opted-in"}


def test_regions_get_disjoint_address_space(stack: str, inventory: Inventory) -> None:
    vpcs = [ipaddress.ip_network(v.inputs["cidrBlock"]) for v in inventory.of_type("aws:ec2/vpc:Vpc")]
    assert all(not a.overlaps(b) for i, a in enumerate(vpcs) for b in vpcs[i + 1 :])


def test_carving_keeps_every_subnet_inside_the_region_and_apart() -> None:
    private, public, edge = carve("10.3.0.0/16")
    nets = [ipaddress.ip_network(c) for c in (*private, *public, *edge)]
    region = ipaddress.ip_network("10.3.0.0/16")
    assert all(n.subnet_of(region) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert len(private) == len(public) == AZ_COUNT and len(edge) >= 16


def test_carving_refuses_anything_but_a_slash_16() -> None:
    with pytest.raises(ValueError, match="must be a /16"):
        carve("10.3.0.0/20")


def test_local_zone_group_is_the_zone_without_its_letter() -> None:
    assert local_zone_group("us-east-1-nyc-2a") == "us-east-1-nyc-2"
