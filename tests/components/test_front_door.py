"""A region's front door: its public names (`<region>.<domain>`, its edge sites'
`<site>.<region>.<domain>`, the routed `inference.<domain>`) and its cloud's TLS material for
them, which the Fleet hands the region's workloads: an AWS region the ARN of its issued ACM
certificate, a GCP region its certificate map, reserved IP and SSL policy, an existing cluster
nothing (its pods serve TLS with the stack's CA). Every name answers in the stack's zone."""

from __future__ import annotations

import json
from fnmatch import fnmatch

import pytest

from components.catalog import Cloud
from components.config import load_stack
from components.fleet import Fleet, FleetArgs
from components.front_door import edge_host, edge_hosts, edge_wildcard, global_host, plain_front_door, region_host
from components.pulumi_internals import resolved
from meridian.mocks import Inventory, run_under_mocks
from meridian.preview import provider_config
from tests.components.cloud_queries import named
from tests.components.k8s.harness import engine_config

STACK = "multicloud-prod"  # both clouds, edge sites on each


def test_public_names_follow_the_domain_region_and_site() -> None:
    config = load_stack(STACK)
    assert global_host(config) == "inference.api.meridian.example.com"
    assert region_host(config, "us-east-1") == "us-east-1.api.meridian.example.com"
    assert edge_host(config, "us-east-1", "nyc") == "nyc.us-east-1.api.meridian.example.com"
    for region in config.regions:  # the region's wildcard covers each of its edge sites, one label deep
        for host in edge_hosts(config, region).values():
            own = region_host(config, region.name)
            assert fnmatch(host, edge_wildcard(config, region.name)) and host.count(".") == own.count(".") + 1


def test_an_existing_cluster_has_names_and_no_cloud_material() -> None:
    config = load_stack("onprem")
    region = config.home_region
    door = plain_front_door(config, region)
    assert door.region_host == region_host(config, region.name)
    assert door.edge_hosts == {s.name: edge_host(config, region.name, s.name) for s in region.edge_sites}
    assert (
        door.acm_certificate_arn,
        door.gcp_certificate_map,
        door.gcp_address_name,
        door.gcp_address,
        door.gcp_ssl_policy,
    ) == (None,) * 5


@pytest.fixture(scope="module")
def fleet_run() -> tuple[Fleet, Inventory]:
    """The base stack's Fleet under mocks, kept to read what it handed each region."""
    config = load_stack(STACK)
    fleets: list[Fleet] = []
    engine = {
        **provider_config(STACK),
        **engine_config(config),  # the offline engine stands in for the API keys' secrets from `auth`
        "meridian:dns": json.dumps(config.dns.model_dump(mode="json", by_alias=True)),
    }
    inventory = run_under_mocks(
        lambda: fleets.append(Fleet("meridian", FleetArgs(config=config, stack=STACK))), stack=STACK, config=engine
    )
    return fleets[0], inventory


def test_each_cloud_region_gets_its_issued_certificate_and_gateway_material(
    fleet_run: tuple[Fleet, Inventory],
) -> None:
    (fleet, inventory), config = fleet_run, load_stack(STACK)
    for region in config.regions:
        door = fleet.regions[region.name].front_door
        assert door.region_host == region_host(config, region.name)
        assert door.edge_hosts == edge_hosts(config, region)
        if region.cloud is Cloud.AWS:
            validation = named(
                inventory,
                f"{region.name}-certificate-validation",
                "aws:acm/certificateValidation:CertificateValidation",
            )
            # the validation's ARN: it resolves only once ACM has issued the certificate
            assert resolved(door.acm_certificate_arn) == validation.inputs["certificateArn"]
            assert door.gcp_certificate_map is None and door.gcp_address is None
        else:
            prefix = f"{region.name}-gateway-tls"
            certificate_map = named(inventory, f"{prefix}-map", "gcp:certificatemanager/certificateMap:CertificateMap")
            address = named(inventory, f"{prefix}-ip", "gcp:compute/globalAddress:GlobalAddress")
            policy = named(inventory, f"{prefix}-policy", "gcp:compute/sSLPolicy:SSLPolicy")
            assert resolved(door.gcp_certificate_map) == certificate_map.outputs["name"]
            assert resolved(door.gcp_address_name) == address.outputs["name"]
            assert resolved(door.gcp_address) == address.outputs["address"]
            assert resolved(door.gcp_ssl_policy) == policy.outputs["name"]
            assert door.acm_certificate_arn is None


def test_every_region_and_edge_site_name_answers_in_the_stacks_zone(fleet_run: tuple[Fleet, Inventory]) -> None:
    """A region's name answers with its endpoint; an edge site's with its own load balancer
    (AWS) or its region's Gateway, which routes it by host (GCP)."""
    fleet, inventory = fleet_run
    (zone,) = inventory.of_type("aws:route53/zone:Zone")
    records = {r.inputs["name"]: r.inputs for r in inventory.of_type("aws:route53/record:Record")}
    for name, outcome in fleet.regions.items():
        door = outcome.front_door
        answers = {door.region_host: outcome.inference_endpoint, **outcome.edge_endpoints}
        assert set(answers) == {door.region_host, *door.edge_hosts.values()}
        for host, endpoint in answers.items():
            record = records[host]
            assert record["zoneId"] == zone.outputs["zoneId"] and record["records"] == [resolved(endpoint)]
        if door.gcp_address is not None:
            assert {resolved(e) for e in answers.values()} == {resolved(door.gcp_address)}, name
        else:
            assert len({resolved(e) for e in answers.values()}) == len(answers), name
