"""At an AWS home, Route53 routes clients by latency over every regional endpoint, each
health-checked over HTTPS on the stack's readiness path through the region's own name (sent as
SNI, which its certificate covers); regions routed as the same AWS region share one latency
record through a weighted pool. Every region's and edge site's own name answers with its load
balancer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.catalog import Cloud
from components.front_door import global_host, region_host
from components.geo import existing_zone_problem, is_ip, routing_locations
from meridian.mocks import Inventory
from tests.components.cloud_queries import config_of, mock_id, named
from workloads.contract import PUBLIC_TLS_PORT

RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"
ZONE = "aws:route53/zone:Zone"


def test_every_regional_endpoint_is_health_checked_and_latency_routed(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    if config.home_region.cloud is not Cloud.AWS:
        assert inventory.of_type(RECORD, CHECK) == []
        return
    endpoints = inventory.outputs["regions"]
    assert set(endpoints) == {r.name for r in config.regions}
    name = global_host(config)
    latency = [r for r in inventory.of_type(RECORD) if r.inputs.get("latencyRoutingPolicies")]
    assert {r.inputs["name"] for r in latency} == {name}
    locations = routing_locations(config.regions, Cloud.AWS)
    assert sorted(r.inputs["setIdentifier"] for r in latency) == sorted(set(locations.values()))
    assert all(r.inputs["type"] == "CNAME" and r.inputs["healthCheckId"] for r in latency)

    for region in config.regions:
        own = region_host(config, region.name)
        endpoint = endpoints[region.name]["inferenceEndpoint"]
        check = named(inventory, f"global-latency-{region.name}", CHECK).inputs
        assert check["type"] == "HTTPS" and check["port"] == PUBLIC_TLS_PORT
        assert check["fqdn"] == own and check["enableSni"] is True
        assert check.get("ipAddress") == (endpoint if is_ip(endpoint) else None)
        assert check["resourcePath"] == config.dns.health_check_path
        direct = named(inventory, f"global-latency-{region.name}", RECORD).inputs
        assert direct["name"] == own and direct["records"] == [endpoint]
        assert direct["type"] == ("A" if is_ip(endpoint) else "CNAME")

        # the region is reachable from the latency name: directly, or through its location's pool
        location = locations[region.name]
        (entry,) = [r for r in latency if r.inputs["setIdentifier"] == location]
        pooled = [r for r in inventory.of_type(RECORD) if r.inputs.get("weightedRoutingPolicies")]
        if entry.inputs["records"] == [own]:
            assert entry.inputs["healthCheckId"] == mock_id(named(inventory, f"global-latency-{region.name}", CHECK))
        else:
            (member,) = [r for r in pooled if r.inputs["setIdentifier"] == region.name]
            assert member.inputs["name"] == entry.inputs["records"][0] and member.inputs["records"] == [own]
            assert member.inputs["healthCheckId"] == mock_id(named(inventory, f"global-latency-{region.name}", CHECK))


def test_a_shared_location_answers_while_any_member_is_healthy(inventory_of: Callable[[str], Inventory]) -> None:
    inventory = inventory_of("multicloud-prod")
    # europe-west4 (GCP) is nearest to eu-central-1 (AWS), which the stack also runs
    assert routing_locations(config_of("multicloud-prod").regions, Cloud.AWS)["europe-west4"] == "eu-central-1"
    pool = named(inventory, "global-latency-pool-eu-central-1", CHECK).inputs
    assert pool["type"] == "CALCULATED" and pool["childHealthThreshold"] == 1
    assert sorted(pool["childHealthchecks"]) == sorted(
        mock_id(named(inventory, f"global-latency-{r}", CHECK)) for r in ("eu-central-1", "europe-west4")
    )


def test_the_zone_is_the_stacks_own_and_its_name_servers_are_exported_to_delegate_to(
    stack: str, inventory: Inventory
) -> None:
    config = config_of(stack)
    zones = inventory.of_type(ZONE)
    if config.home_region.cloud is not Cloud.AWS or config.dns.existing_zone is not None:
        assert zones == []
        return
    (zone,) = zones
    assert zone.inputs["name"] == config.dns.domain and zone.region == config.home
    assert inventory.outputs["inferenceDnsName"] == global_host(config)
    assert inventory.outputs["nameServers"] == zone.outputs["nameServers"]
    records = inventory.of_type(RECORD)
    assert records and all(r.inputs["zoneId"] == zone.outputs["zoneId"] for r in records)


def test_an_existing_hosted_zone_is_looked_up_and_holds_every_record(inventory_of: Callable[[str], Inventory]) -> None:
    """aws-prod names its zone (dns.existingZone.route53HostedZoneId): it creates none, every
    record (routing, certificate validation, the CDN alias) goes into the looked-up zone, and
    there are no name servers to delegate to."""
    config = config_of("aws-prod")
    assert config.dns.existing_zone is not None
    zone_id = config.dns.existing_zone.route53_hosted_zone_id
    inventory = inventory_of("aws-prod")
    assert inventory.of_type(ZONE) == []
    records = inventory.of_type(RECORD)
    assert {r.inputs["name"] for r in records} >= {global_host(config), f"models.{config.dns.domain}"}
    assert {r.inputs["zoneId"] for r in records} == {zone_id}
    assert "nameServers" not in inventory.outputs


@pytest.mark.parametrize(
    ("domain", "zone", "public", "problem"),
    [
        ("api.example.com", "api.example.com.", True, None),
        ("api.example.com", "example.com", True, None),  # a parent zone holds the names too
        ("api.example.com", "Example.COM.", True, None),
        ("api.example.com", "other.com", True, "cannot hold names under api.example.com"),
        ("api.example.com", "xample.com", True, "cannot hold names under api.example.com"),  # not a label boundary
        ("api.example.com", "example.com", False, "is private"),
    ],
)
def test_an_existing_zone_must_be_public_and_serve_the_domain_or_a_parent(
    domain: str, zone: str, public: bool, problem: str | None
) -> None:
    found = existing_zone_problem(domain, zone, public)
    assert found is None if problem is None else problem in (found or "")
