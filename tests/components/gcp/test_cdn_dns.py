"""Cloud CDN serves every GCP region's registry bucket (path `/<region>/*`) through one global
HTTPS load balancer (managed certificate, TLS 1.2+, no HTTP listener): at a GCP home at
`models.<domain>`, where the home's bucket also serves the global model at `/global/*`; at an
AWS home with GCP regions at `models-gcp.<domain>`, named in the home's Route53 zone, beside
CloudFront, which reaches S3 only and keeps the global model. At a GCP home, Cloud DNS answers
the inference name by the client's location with HTTPS health checks on every regional endpoint."""

from __future__ import annotations

import yaml

from components.catalog import Cloud
from components.config import namespace_values, stack_file
from components.front_door import global_host
from components.geo import routing_locations
from meridian.mocks import Inventory
from meridian.preview import provider_config, run_program
from tests.components.cloud_queries import config_of, mock_id, named, regions_on
from workloads.contract import PUBLIC_TLS_PORT

GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
RECORD = "gcp:dns/recordSet:RecordSet"
ZONE = "gcp:dns/managedZone:ManagedZone"


def _gcp_home(stack: str) -> bool:
    return config_of(stack).home_region.cloud is Cloud.GCP


def _gcp_cdn(stack: str) -> tuple[str, str] | None:
    """The Cloud CDN serving the stack's GCP registries, as (component name, host name); None:
    no CDN, or no GCP region."""
    config = config_of(stack)
    if not (config.cdn.enabled and regions_on(stack, Cloud.GCP)):
        return None
    if _gcp_home(stack):
        return "global-registry-cdn", f"models.{config.dns.domain}"
    return "global-gcp-registry-cdn", f"models-gcp.{config.dns.domain}"


def test_registry_cdn_is_https_only_through_private_buckets(stack: str, inventory: Inventory) -> None:
    backends = inventory.of_type("gcp:compute/backendBucket:BackendBucket")
    cdn = _gcp_cdn(stack)
    if cdn is None:
        assert backends == []
        return
    name, host = cdn
    rules = inventory.of_type("gcp:compute/globalForwardingRule:GlobalForwardingRule")
    assert [r.inputs["portRange"] for r in rules] == ["443"]  # no HTTP listener at all
    assert inventory.of_type("gcp:compute/targetHttpProxy:TargetHttpProxy") == []
    tls = named(inventory, f"{name}-tls", "gcp:compute/sSLPolicy:SSLPolicy").inputs
    assert tls["minTlsVersion"] == "TLS_1_2" and tls["profile"] == "MODERN"
    cert = named(inventory, f"{name}-cert", "gcp:compute/managedSslCertificate:ManagedSslCertificate")
    assert cert.inputs["managed"]["domains"] == [host]


def test_each_regions_registry_has_a_cdn_backend_at_its_own_path_and_global_is_a_gcp_homes(
    stack: str, inventory: Inventory
) -> None:
    cdn = _gcp_cdn(stack)
    if cdn is None:
        return
    (name, host), config = cdn, config_of(stack)
    regions = [r.name for r in regions_on(stack, Cloud.GCP)]
    backends = {b.name: b for b in inventory.of_type("gcp:compute/backendBucket:BackendBucket")}
    assert sorted(backends) == sorted(f"{name}-{r}-backend" for r in regions)
    for region in regions:
        backend = backends[f"{name}-{region}-backend"].inputs
        assert backend["bucketName"] == f"{region}-registry" and backend["enableCdn"] is True
        fill = named(inventory, f"{name}-{region}-cache-fill", GRANT).inputs
        assert fill["bucket"] == f"{region}-registry" and fill["role"] == "roles/storage.objectViewer"
        assert fill["member"].endswith("@cloud-cdn-fill.iam.gserviceaccount.com")

    url_map = named(inventory, f"{name}-urls", "gcp:compute/uRLMap:URLMap").inputs
    (host_rule,) = url_map["hostRules"]
    assert host_rule["hosts"] == [host]
    (matcher,) = url_map["pathMatchers"]
    assert matcher["name"] == host_rule["pathMatcher"]
    link = {b.name: b.outputs["selfLink"] for b in backends.values()}
    routes = {path: rule["service"] for rule in matcher["pathRules"] for path in rule["paths"]}
    own = {f"/{r}/*": link[f"{name}-{r}-backend"] for r in regions}
    if _gcp_home(stack):
        home = link[f"{name}-{config.home}-backend"]
        assert routes == own | {"/global/*": home}
        assert url_map["defaultService"] == matcher["defaultService"] == home
    else:
        # The global model is CloudFront's; a path no rule names reaches the first GCP region's
        # bucket, which holds only `<region>/` objects: a miss, not another region's artifact.
        assert routes == own
        assert url_map["defaultService"] == matcher["defaultService"] == link[f"{name}-{regions[0]}-backend"]


def test_an_aws_homes_zone_names_the_gcp_registries_cdn(stack: str, inventory: Inventory) -> None:
    cdn = _gcp_cdn(stack)
    records = {r.name: r for r in inventory.of_type("aws:route53/record:Record")}
    if cdn is None or _gcp_home(stack):
        assert "global-gcp-registry" not in records
        return
    name, host = cdn
    record = records["global-gcp-registry"]
    address = named(inventory, f"{name}-ip", "gcp:compute/globalAddress:GlobalAddress").outputs["address"]
    assert (record.inputs["name"], record.inputs["type"], record.inputs["records"]) == (host, "A", [address])
    assert record.inputs["zoneId"] == records["global-registry-cdn-alias"].inputs["zoneId"]  # CloudFront's zone
    assert inventory.outputs["gcpRegistryCdnUrl"] == f"https://{host}"


def test_inference_name_is_geo_routed_over_health_checked_regions(stack: str, inventory: Inventory) -> None:
    config = config_of(stack)
    if not _gcp_home(stack):
        assert inventory.of_type(RECORD, "gcp:dns/managedZone:ManagedZone") == []
        return
    zone = named(inventory, "global-zone", "gcp:dns/managedZone:ManagedZone").inputs
    assert zone["dnsName"] == f"{config.dns.domain}." and zone["dnssecConfig"] == {"state": "on"}
    check = named(inventory, "global-geo-health", "gcp:compute/healthCheck:HealthCheck").inputs
    assert "httpHealthCheck" not in check
    # one check for every endpoint: it names the routed host, which every region's certificate covers
    assert check["httpsHealthCheck"] == {
        "port": PUBLIC_TLS_PORT,
        "host": global_host(config),
        "requestPath": config.dns.health_check_path,
    }
    assert len(check["sourceRegions"]) == 3

    geo = named(inventory, "global-geo-geo", RECORD).inputs
    assert geo["name"] == f"{global_host(config)}." and geo["type"] == "A"
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
    assert f"{global_host(config_of('gcp-eu'))}." in {r.inputs["name"] for r in records}
    assert {r.inputs["managedZone"] for r in records} == {"corp-eu"}
    assert "nameServers" not in inventory.outputs
