"""Routing locations: a region of the DNS's cloud is its own location; any other region is
routed as the nearest region of the DNS's cloud, and regions sharing one are pooled."""

from __future__ import annotations

import pulumi
import pytest

from components.catalog import AWS_REGIONS, GCP_REGIONS, Cloud
from components.config import load_stack
from components.geo import RegionalEndpoint, is_ip, pools, routing_locations
from components.locations import AWS_LOCATIONS, GCP_LOCATIONS, distance_km


def test_every_catalog_region_has_a_position() -> None:
    assert set(AWS_REGIONS) <= set(AWS_LOCATIONS)
    assert set(GCP_REGIONS) <= set(GCP_LOCATIONS)


def test_distance_matches_known_city_pairs() -> None:
    # Frankfurt - Dublin is about 1,090 km; N. Virginia - Singapore about 15,600 km
    assert distance_km(AWS_LOCATIONS["eu-central-1"], AWS_LOCATIONS["eu-west-1"]) == pytest.approx(1090, rel=0.05)
    assert distance_km(AWS_LOCATIONS["us-east-1"], AWS_LOCATIONS["ap-southeast-1"]) == pytest.approx(15600, rel=0.05)


def test_multicloud_regions_map_to_their_nearest_aws_region() -> None:
    locations = routing_locations(load_stack("multicloud-prod").regions, Cloud.AWS)
    assert locations == {
        "us-east-1": "us-east-1",
        "us-west1": "us-west-2",  # Oregon and Oregon
        "eu-central-1": "eu-central-1",
        "europe-west4": "eu-central-1",  # Groningen is nearer Frankfurt than Dublin or London
        "ap-southeast-1": "ap-southeast-1",
        "asia-northeast1": "ap-northeast-1",  # Tokyo and Tokyo
    }


def test_existing_clusters_are_routed_from_their_residency_zone() -> None:
    locations = routing_locations(load_stack("onprem").regions, Cloud.GCP)
    assert set(locations.values()) <= set(GCP_LOCATIONS)
    assert locations["fra-dc1"] == "europe-west3"  # the EU anchor is Frankfurt


def test_kubernetes_cannot_serve_global_dns() -> None:
    with pytest.raises(ValueError, match="AWS \\(Route53\\) or GCP"):
        routing_locations(load_stack("onprem").regions, Cloud.KUBERNETES)


@pulumi.runtime.test
def test_pools_group_endpoints_by_location_in_order() -> None:
    def endpoint(region: str, location: str) -> RegionalEndpoint:
        return RegionalEndpoint(
            region=region, host=f"{region}.example.com", address=pulumi.Output.from_input(region), location=location
        )

    grouped = pools([endpoint("a", "x"), endpoint("b", "y"), endpoint("c", "x")])
    assert {k: [e.region for e in v] for k, v in grouped.items()} == {"x": ["a", "c"], "y": ["b"]}


def test_is_ip_tells_addresses_from_hostnames() -> None:
    assert is_ip("34.1.2.3") and is_ip("2001:db8::1")
    assert not is_ip("a1b2.elb.us-east-1.amazonaws.com")
