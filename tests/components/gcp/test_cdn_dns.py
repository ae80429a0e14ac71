"""At a GCP home: Cloud CDN serves every GCP region's registry bucket (path `/<region>/*`, the
global model at `/global/*`) through one global HTTPS load balancer (managed certificate,
TLS 1.2+, no HTTP listener), and Cloud DNS answers the inference name by the
client's location with health checks on every regional endpoint."""

from __future__ import annotations

import yaml

from components.catalog import Cloud
from components.config import namespace_values, stack_file
from components.geo import routing_locations
from components.global_routing import inference_name
from meridian.mocks import Inventory
from meridian.preview import provider_config, run_program
from tests.components.cloud_queries import config_of, mock_id, named
from workloads.contract import HTTP_PORT

GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
RECORD = "gcp:dns/recordSet:RecordSet"
ZONE = "gcp:dns/managedZone:ManagedZone"


def _gcp_home(stack: str) -> bool:
    return config_of(stack).home_region.cloud is Cloud.GCP


def test_registry_cdn_is_https_only_through_private_buckets(stack: str, inventory: Inventory) -> None:
    backends = inventory.of_type("gcp:compute/backendBucket:BackendBucket")
    config = config_of(stack)
    if not (_gcp_home(stack) and config.cdn.enabled):
        assert backends == []
        return
    rules = inventory.of_type("gcp:compute/globalForwardingRule:GlobalForwardingRule")
    assert [r.inputs["portRange"] for r in rules] == ["443"]  # no HTTP listener at all
    assert inventory.of_type("gcp:compute/targetHttpProxy:TargetHttpProxy") == []
    tls = named(inventory, "global-registry-cdn-tls", "gcp:compute/sSLPolicy:SSLPolicy").inputs
    assert tls["minTlsVersion"] == "TLS_1_2" and tls["profile"] == "MODERN"
    cert = named(inventory, "global-registry-cdn-cert", "gcp:compute/managedSslCertificate:ManagedSslCertificate")
    assert cert.inputs["managed"]["domains"] == [f"models.{config.dns.domain}"]


def test_each_regions_registry_has_a_cdn_backend_at_its_own_path_and_global_is_the_homes(
    stack: str, inventory: Inventory
) -> None:
    config = config_of(stack)
    if not (_gcp_home(stack) and config.cdn.enabled):
        return
    regions = [r.name for r in config.regions if r.cloud is Cloud.GCP]
    backends = {b.name: b for b in inventory.of_type("gcp:compute/backendBucket:BackendBucket")}
    assert sorted(backends) == sorted(f"global-registry-cdn-{r}-backend" for r in regions)
    for region in regions:
        backend = backends[f"global-registry-cdn-{region}-backend"].inputs
        assert backend["bucketName"] == f"{region}-registry" and backend["enableCdn"] is True
        fill = named(inventory, f"global-registry-cdn-{region}-cache-fill", GRANT).inputs
        assert fill["bucket"] == f"{region}-registry" and fill["role"] == "roles/storage.objectViewer"
        assert fill["member"].endswith("@cloud-cdn-fill.iam.gserviceaccount.com")

    url_map = named(inventory, "global-registry-cdn-urls", "gcp:compute/uRLMap:URLMap").inputs
    (host,) = url_map["hostRules"]
    assert host["hosts"] == [f"models.{config.dns.domain}"]
    (matcher,) = url_map["pathMatchers"]
    assert matcher["name"] == host["pathMatcher"]
    link = {b.name: b.outputs["selfLink"] for b in backends.values()}
    routes = {path: rule["service"] for rule in matcher["pathRules"] for path in rule["paths"]}
    home = link[f"global-registry-cdn-{config.home}-backend"]
    assert routes == {f"/{r}/*": link[f"global-registry-cdn-{r}-backend"] for r in regions} | {"/global/*": home}
    assert url_map["defaultService"] == matcher["defaultService"] == home


def test_inference_name_is_geo_routed_over_health_checked_regions(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    if not _gcp_home(stack):
        assert inventory.of_type(RECORD, "gcp:dns/managedZone:ManagedZone") == []
        return
    zone = named(inventory, "global-zone", "gcp:dns/managedZone:ManagedZone").inputs
    assert zone["dnsName"] == f"{config.dns.domain}." and zone["dnssecConfig"] == {"state": "on"}
    check = named(inventory, "global-geo-health", "gcp:compute/healthCheck:HealthCheck").inputs
    assert check["httpHealthCheck"] == {"port": HTTP_PORT, "requestPath": config.dns.health_check_path}
    assert len(check["sourceRegions"]) == 3

    geo = named(inventory, "global-geo-geo", RECORD).inputs
    assert geo["name"] == f"{inference_name(config)}." and geo["type"] == "A"
    policy = geo["routingPolicy"]
    assert policy["healthCheck"] == mock_id(
        named(inventory, "global-geo-health", "gcp:compute/healthCheck:HealthCheck")
    )
    endpoints = {r: v["inferenceEndpoint"] for r, v in inventory.outputs["regions"].items()}
    routed = {ip for item in policy["geos"] for ip in item["healthCheckedTargets"]["externalEndpoints"]}
    assert routed == set(endpoints.values())
    assert {item["location"] for item in policy["geos"]} == set(routing_locations(config.regions, Cloud.GCP).values())
    for region in config.regions:
        own = named(inventory, f"global-geo-{region.name}", RECORD).inputs
        assert own["rrdatas"] == [endpoints[region.name]] and own["type"] == "A"


def test_the_zone_is_the_stacks_own_and_its_name_servers_are_exported_to_delegate_to(
    stack: str, inventory: Inventory
) -> None:
    config = config_of(stack)
    if not _gcp_home(stack) or config.dns.existing_zone is not None:
        assert inventory.of_type(ZONE) == []
        return
    zone = named(inventory, "global-zone", ZONE)
    assert zone.inputs["name"] == f"meridian-{stack}" and zone.inputs["visibility"] == "public"
    assert inventory.outputs["nameServers"] == zone.outputs["nameServers"]
    assert {r.inputs["managedZone"] for r in inventory.of_type(RECORD)} == {zone.inputs["name"]}


def test_an_existing_managed_zone_is_looked_up_and_holds_every_record() -> None:
    """gcp-eu with dns.existingZone.cloudDnsManagedZone: no zone of its own, every record goes
    into the named zone, and there are no name servers to delegate to."""
    raw = namespace_values(yaml.safe_load(stack_file("gcp-eu").read_text())["config"])
    raw["dns"] = {**raw["dns"], "existingZone": {"cloudDnsManagedZone": "corp-eu"}}
    inventory = run_program(raw, "gcp-eu", providers=provider_config("gcp-eu"))
    assert inventory.of_type(ZONE) == []
    records = inventory.of_type(RECORD)
    assert f"{inference_name(config_of('gcp-eu'))}." in {r.inputs["name"] for r in records}
    assert {r.inputs["managedZone"] for r in records} == {"corp-eu"}
    assert "nameServers" not in inventory.outputs
