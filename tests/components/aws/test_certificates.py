"""Every AWS region has one ACM certificate, requested in the region itself, for its own name,
the routed name and the wildcard over its edge sites, proven by DNS in the stack's zone
(created or existing, whichever cloud serves it): one validation record per name in the
whole stack, since ACM gives every certificate of the account the same record for a name.
The certificate's ARN reaches the region's listeners through its validation, which waits for
ACM to issue it."""

from __future__ import annotations

from collections.abc import Callable

from components.catalog import Cloud
from components.front_door import edge_wildcard, global_host, region_host
from meridian.mocks import Inventory, Recorded
from tests.components.cloud_queries import config_of, named, regions_on

CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
ZONE = "aws:route53/zone:Zone"


def _zone_id(stack: str, inventory: Inventory) -> str:
    """The stack's hosted zone: the one it names, or its own."""
    existing = config_of(stack).dns.existing_zone
    if existing is not None and existing.route53_hosted_zone_id is not None:
        return existing.route53_hosted_zone_id
    (zone,) = inventory.of_type(ZONE)
    return zone.outputs["zoneId"]


def _option(certificate: Recorded, name: str) -> dict[str, str]:
    (option,) = [o for o in certificate.outputs["domainValidationOptions"] if o["domainName"] == name]
    return option


def test_each_aws_region_has_a_certificate_in_its_region_for_all_its_public_names(
    stack: str, inventory: Inventory
) -> None:
    config, regions = config_of(stack), regions_on(stack, Cloud.AWS)
    certificates = [c for c in inventory.of_type(CERTIFICATE) if c.parent != "global-registry-cdn"]
    assert sorted(c.name for c in certificates) == sorted(f"{r.name}-certificate-cert" for r in regions)
    for region in regions:
        certificate = named(inventory, f"{region.name}-certificate-cert", CERTIFICATE)
        assert certificate.region == region.name and certificate.provider == f"aws-{region.name}"
        assert certificate.inputs["validationMethod"] == "DNS"
        assert certificate.inputs["domainName"] == region_host(config, region.name)
        assert certificate.inputs["subjectAlternativeNames"] == [
            global_host(config),
            edge_wildcard(config, region.name),
        ]


def test_each_certificate_is_proven_in_the_stacks_zone_and_its_validation_waits_for_every_name(
    stack: str, inventory: Inventory
) -> None:
    config, regions = config_of(stack), regions_on(stack, Cloud.AWS)
    if not regions:
        return
    zone_id = _zone_id(stack, inventory)
    proofs = [r for r in inventory.of_type(RECORD) if (r.parent or "").endswith("-certificate")]
    records = {r.inputs["name"]: r for r in proofs}
    # one record per name in the stack: each region's own (its wildcard's too) and the routed name's
    assert len(proofs) == len(records) == len(regions) + 1
    for region in regions:
        certificate = named(inventory, f"{region.name}-certificate-cert", CERTIFICATE)
        validation = named(inventory, f"{region.name}-certificate-validation", VALIDATION)
        assert validation.region == region.name
        assert validation.inputs["certificateArn"] == certificate.outputs["arn"]
        own, wildcard = region_host(config, region.name), edge_wildcard(config, region.name)
        assert _option(certificate, own)["resourceRecordName"] == _option(certificate, wildcard)["resourceRecordName"]
        for name in (own, global_host(config)):
            option = _option(certificate, name)
            record = records[option["resourceRecordName"]]
            assert record.inputs["zoneId"] == zone_id and record.inputs["type"] == option["resourceRecordType"]
            assert record.inputs["records"] == [option["resourceRecordValue"]]
            assert option["resourceRecordName"].rstrip(".") in validation.inputs["validationRecordFqdns"]
        assert len(validation.inputs["validationRecordFqdns"]) == 2


def test_an_existing_zone_holds_the_validation_records(inventory_of: Callable[[str], Inventory]) -> None:
    """aws-prod names its zone: the certificates are proven there, and no zone is created."""
    config = config_of("aws-prod")
    assert config.dns.existing_zone is not None
    inventory = inventory_of("aws-prod")
    assert inventory.of_type(ZONE) == []
    proofs = [r for r in inventory.of_type(RECORD) if r.parent and r.parent.endswith("-certificate")]
    assert proofs and {r.inputs["zoneId"] for r in proofs} == {config.dns.existing_zone.route53_hosted_zone_id}
