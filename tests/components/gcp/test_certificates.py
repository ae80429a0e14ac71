"""Every GCP region's Gateway gets, before it exists: a Google-managed Certificate Manager
certificate for its own name, the routed name and the wildcard over its edge sites, proven by
DNS authorization records in the stack's zone whichever cloud serves it (Route53 at an AWS
home, Cloud DNS at a GCP home, created or existing); a certificate map with an entry per host
it answers; a reserved global IP; and a MODERN, TLS 1.2+ SSL policy. The routed name's DNS
authorization is one per stack, shared by every GCP region."""

from __future__ import annotations

from typing import Any

import yaml

from components.catalog import Cloud
from components.config import namespace_values, stack_file
from components.front_door import edge_host, edge_wildcard, global_host, region_host
from components.gcp.certificates import MIN_TLS_VERSION, SSL_PROFILE
from meridian.mocks import Inventory, Recorded
from meridian.preview import provider_config, run_program
from tests.components.cloud_queries import config_of, mock_id, named, regions_on

AUTHORIZATION = "gcp:certificatemanager/dnsAuthorization:DnsAuthorization"
CERTIFICATE = "gcp:certificatemanager/certificate:Certificate"
MAP = "gcp:certificatemanager/certificateMap:CertificateMap"
ENTRY = "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry"
ROUTE53_RECORD = "aws:route53/record:Record"
CLOUD_DNS_RECORD = "gcp:dns/recordSet:RecordSet"


def _authorization_records(inventory: Inventory) -> dict[str, Recorded]:
    """Every DNS authorization's record, whichever cloud's zone holds it, by record name."""
    records = inventory.of_type(ROUTE53_RECORD, CLOUD_DNS_RECORD)
    return {r.inputs["name"]: r for r in records if r.name.endswith("-authorization")}


def _in_the_stacks_zone(stack: str, inventory: Inventory, record: Recorded) -> bool:
    config = config_of(stack)
    existing = config.dns.existing_zone
    if config.home_region.cloud is Cloud.AWS:
        zone = existing.route53_hosted_zone_id if existing else inventory.of_type("aws:route53/zone:Zone")[0]
        wanted = zone if isinstance(zone, str) else zone.outputs["zoneId"]
        return record.type == ROUTE53_RECORD and record.inputs["zoneId"] == wanted
    wanted = existing.cloud_dns_managed_zone if existing else f"meridian-{stack}"
    return record.type == CLOUD_DNS_RECORD and record.inputs["managedZone"] == wanted


def _check_proven(stack: str, inventory: Inventory) -> None:
    config, regions = config_of(stack), regions_on(stack, Cloud.GCP)
    authorizations = {a.inputs["domain"]: a for a in inventory.of_type(AUTHORIZATION)}
    # each region's own name, and the routed name once for the stack
    assert sorted(authorizations) == sorted([*(region_host(config, r.name) for r in regions), global_host(config)])
    records = _authorization_records(inventory)
    assert len(records) == len(authorizations)
    for authorization in authorizations.values():
        (challenge,) = authorization.outputs["dnsResourceRecords"]
        record = records[challenge["name"]]
        assert _in_the_stacks_zone(stack, inventory, record)
        assert record.inputs["type"] == challenge["type"] == "CNAME"
        assert (record.inputs.get("records") or record.inputs.get("rrdatas")) == [challenge["data"]]
    for region in regions:
        certificate = named(inventory, f"{region.name}-gateway-tls-cert", CERTIFICATE)
        assert certificate.provider == f"gcp-{region.name}"
        own = region_host(config, region.name)
        managed: dict[str, Any] = certificate.inputs["managed"]
        assert managed["domains"] == [own, global_host(config), edge_wildcard(config, region.name)]
        # a domain's authorization covers its wildcard too
        assert managed["dnsAuthorizations"] == [
            mock_id(authorizations[own]),
            mock_id(authorizations[global_host(config)]),
        ]


def test_each_gcp_region_has_a_managed_certificate_proven_in_the_stacks_zone(stack: str, inventory: Inventory) -> None:
    if not regions_on(stack, Cloud.GCP):
        assert inventory.of_type(AUTHORIZATION, CERTIFICATE, MAP, ENTRY) == []
        return
    _check_proven(stack, inventory)


def test_an_aws_homes_zone_holds_the_gcp_regions_authorizations(stack: str, inventory: Inventory) -> None:
    """Across clouds: the GCP regions of an AWS-homed stack are proven in its Route53 zone."""
    config = config_of(stack)
    if config.home_region.cloud is not Cloud.AWS or not regions_on(stack, Cloud.GCP):
        return
    records = _authorization_records(inventory).values()
    assert records and all(r.type == ROUTE53_RECORD and r.provider == f"aws-{config.home}" for r in records)


def test_an_existing_managed_zone_holds_the_authorizations() -> None:
    raw = namespace_values(yaml.safe_load(stack_file("gcp-eu").read_text())["config"])
    raw["dns"] = {**raw["dns"], "existingZone": {"cloudDnsManagedZone": "corp-eu"}}
    inventory = run_program(raw, "gcp-eu", providers=provider_config("gcp-eu"))
    assert inventory.of_type("gcp:dns/managedZone:ManagedZone") == []
    assert {r.inputs["managedZone"] for r in _authorization_records(inventory).values()} == {"corp-eu"}


def test_each_gateway_has_a_map_entry_per_host_a_reserved_ip_and_a_modern_tls_policy(
    stack: str, inventory: Inventory
) -> None:
    config = config_of(stack)
    for region in regions_on(stack, Cloud.GCP):
        prefix = f"{region.name}-gateway-tls"
        certificate = named(inventory, f"{prefix}-cert", CERTIFICATE)
        certificate_map = named(inventory, f"{prefix}-map", MAP)
        entries = [e for e in inventory.of_type(ENTRY) if e.parent == prefix]
        hosts = [region_host(config, region.name), global_host(config)]
        hosts += [edge_host(config, region.name, s.name) for s in region.edge_sites]
        assert sorted(e.inputs["hostname"] for e in entries) == sorted(hosts)
        for entry in entries:
            assert entry.inputs["map"] == certificate_map.outputs["name"]
            assert entry.inputs["certificates"] == [mock_id(certificate)]
        address = named(inventory, f"{prefix}-ip", "gcp:compute/globalAddress:GlobalAddress")
        assert address.inputs["ipVersion"] == "IPV4"
        policy = named(inventory, f"{prefix}-policy", "gcp:compute/sSLPolicy:SSLPolicy").inputs
        assert (policy["profile"], policy["minTlsVersion"]) == (SSL_PROFILE, MIN_TLS_VERSION) == ("MODERN", "TLS_1_2")
        # the region's own name answers with the Gateway's reserved IP, known before the Gateway
        assert inventory.outputs["regions"][region.name]["inferenceEndpoint"] == address.outputs["address"]
