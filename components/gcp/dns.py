"""Cloud DNS routing for a GCP-homed fleet: every regional endpoint gets its own name (and each
of its edge sites theirs), and the fleet's inference name answers by the client's location (geo
routing) with HTTPS health checks on the readiness path, so clients reach the nearest healthy
region. The records go into the stack's own managed zone (DNSSEC on), or into an existing one
(`dns.existingZone.cloudDnsManagedZone`) looked up rather than created."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config import ExistingZone
from components.geo import RoutedName, Zone, existing_zone_problem, is_ip, pools
from components.stack_zone import StackZone, fqdn

# Cloud DNS health checks for external endpoints probe from exactly three source regions.
PROBE_REGIONS = ["us-east4", "europe-west1", "asia-southeast1"]


@dataclass(frozen=True)
class GeoRoutingArgs:
    project: str
    zone: StackZone  # a Cloud DNS one
    routed: RoutedName


def managed_zone(
    name: str, zone_name: str, domain: str, project: str, existing: ExistingZone | None, opts: pulumi.ResourceOptions
) -> Zone:
    """The stack's own public managed zone `zone_name` for `domain`, or the existing one the stack
    names, looked up in `project` (with `opts`' provider, once what it depends on exists) and
    checked: public, and serving the domain or a parent."""
    if existing is None or existing.cloud_dns_managed_zone is None:
        zone = gcp.dns.ManagedZone(
            name,
            project=project,
            name=zone_name,
            dns_name=fqdn(domain),
            visibility="public",
            dnssec_config=gcp.dns.ManagedZoneDnssecConfigArgs(state="on"),
            opts=opts,
        )
        return Zone(id=zone.name, name_servers=zone.name_servers)
    found = gcp.dns.get_managed_zone_output(
        name=existing.cloud_dns_managed_zone,
        project=project,
        opts=pulumi.InvokeOutputOptions(parent=opts.parent, provider=opts.provider, depends_on=opts.depends_on),
    )

    def checked(result: gcp.dns.GetManagedZoneResult) -> str:
        problem = existing_zone_problem(domain, result.dns_name, public=result.visibility == "public")
        if problem:
            raise ValueError(f"dns.existingZone.cloudDnsManagedZone {result.name}: {problem}")
        return result.name

    return Zone(id=found.apply(checked), name_servers=None)


class GeoRouting(pulumi.ComponentResource):
    health_check: gcp.compute.HealthCheck
    regional_names: dict[str, str]

    def __init__(self, name: str, args: GeoRoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GeoRouting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        routed = args.routed
        self.regional_names = {}
        for endpoint in routed.endpoints:
            args.zone.address_record(f"{name}-{endpoint.region}", endpoint.host, endpoint.address, self)
            for host, address in endpoint.edges.items():
                args.zone.address_record(f"{name}-{endpoint.region}-{host.split('.')[0]}", host, address, self)
            self.regional_names[endpoint.region] = endpoint.host

        # One check probes every endpoint, so it names the one host they all answer for: the
        # routed name, which every region's certificate covers and its Gateway routes.
        self.health_check = gcp.compute.HealthCheck(
            f"{name}-health",
            project=args.project,
            https_health_check=gcp.compute.HealthCheckHttpsHealthCheckArgs(
                port=routed.port, host=routed.name, request_path=routed.health_check_path
            ),
            source_regions=PROBE_REGIONS,
            check_interval_sec=30,
            timeout_sec=10,
            opts=child,
        )
        endpoints = routed.endpoints

        def routing(resolved: list[str]) -> gcp.dns.RecordSetRoutingPolicyArgs:
            health_check_id, addresses = resolved[0], resolved[1:]
            hosts = [f"{e.region}: {a}" for e, a in zip(endpoints, addresses, strict=True) if not is_ip(a)]
            if hosts:
                # Cloud DNS health-checks A records only; a hostname cannot join this group.
                raise ValueError(
                    "geo routing with health checks needs IP endpoints; these are hostnames: " + ", ".join(hosts)
                )
            by_region = dict(zip((e.region for e in endpoints), addresses, strict=True))
            return gcp.dns.RecordSetRoutingPolicyArgs(
                health_check=health_check_id,
                # one item per location; regions routed as the same location share it
                geos=[
                    gcp.dns.RecordSetRoutingPolicyGeoArgs(
                        location=location,
                        health_checked_targets=gcp.dns.RecordSetRoutingPolicyGeoHealthCheckedTargetsArgs(
                            external_endpoints=[by_region[m.region] for m in members]
                        ),
                    )
                    for location, members in pools(endpoints).items()
                ],
            )

        gcp.dns.RecordSet(
            f"{name}-geo",
            project=args.project,
            managed_zone=args.zone.id,
            name=fqdn(routed.name),
            type="A",
            ttl=routed.ttl,
            routing_policy=pulumi.Output.all(self.health_check.id, *[e.address for e in endpoints]).apply(routing),
            opts=child,
        )
        self.register_outputs({"name": routed.name, "regionalNames": self.regional_names})
