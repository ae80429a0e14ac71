"""The global layer's zone comes first: the Fleet makes it (or looks it up) with the home
region, before any other region, so every cloud region's certificate is proven through it;
the routing records follow. Everything it routes is probed over HTTPS on the public TLS port."""

from __future__ import annotations

from components.catalog import Cloud
from meridian.mocks import Inventory
from tests.components.cloud_queries import config_of
from workloads.contract import PUBLIC_TLS_PORT

ZONES = ("aws:route53/zone:Zone", "gcp:dns/managedZone:ManagedZone")
PROOFS = ("aws:route53/record:Record", "gcp:dns/recordSet:RecordSet")


def test_the_zone_is_the_fleets_and_every_certificate_proof_waits_for_it(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    zones = inventory.of_type(*ZONES)
    if config.home_region.cloud is Cloud.KUBERNETES or config.dns.existing_zone is not None:
        assert zones == []
        return
    (zone,) = zones
    assert zone.parent == "meridian" and zone.name == "global-zone"  # the Fleet's, not the routing's
    proofs = [r for r in inventory.of_type(*PROOFS) if (r.parent or "").endswith(("-certificate", "-gateway-tls"))]
    assert len(proofs) >= len([r for r in config.regions if r.cloud is not Cloud.KUBERNETES])
    assert all("global-zone" in r.dependencies for r in proofs)


def test_health_checks_probe_https_on_the_public_tls_port(stack: str, inventory: Inventory) -> None:
    route53 = [c.inputs for c in inventory.of_type("aws:route53/healthCheck:HealthCheck")]
    assert all(c["type"] == "HTTPS" and c["port"] == PUBLIC_TLS_PORT for c in route53 if c["type"] != "CALCULATED")
    cloud_dns = [c.inputs for c in inventory.of_type("gcp:compute/healthCheck:HealthCheck") if c.parent == "global-geo"]
    assert all("httpHealthCheck" not in c and c["httpsHealthCheck"]["port"] == PUBLIC_TLS_PORT for c in cloud_dns)
    routed = config_of(stack).home_region.cloud is not Cloud.KUBERNETES
    assert bool(route53 or cloud_dns) == routed
