"""Route53 latency routing: every regional endpoint gets its own name (and each of its edge
sites theirs), an HTTPS health check on the readiness path through the region's own name (its
certificate's, sent as SNI), and a latency record under the fleet's inference name, so clients
reach the nearest healthy region. The records go into the stack's own hosted zone, or into an
existing one (`dns.existingZone.route53HostedZoneId`) looked up rather than created."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import ExistingZone
from components.geo import RoutedName, Zone, existing_zone_problem, is_ip, pools
from components.stack_zone import StackZone

HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_FAILURES = 3  # ~90 s of failures before a region leaves the answer


def hosted_zone(
    name: str, domain: str, comment: str, existing: ExistingZone | None, opts: pulumi.ResourceOptions
) -> Zone:
    """The stack's own public hosted zone for `domain`, or the existing one the stack names,
    looked up (with `opts`' provider) and checked: public, and serving the domain or a parent."""
    if existing is None or existing.route53_hosted_zone_id is None:
        zone = aws.route53.Zone(name, name=domain, comment=comment, opts=opts)
        return Zone(id=zone.zone_id, name_servers=zone.name_servers)
    found = aws.route53.get_zone_output(
        zone_id=existing.route53_hosted_zone_id,
        opts=pulumi.InvokeOutputOptions(parent=opts.parent, provider=opts.provider),
    )

    def checked(result: aws.route53.GetZoneResult) -> str:
        problem = existing_zone_problem(domain, result.name, public=not result.private_zone)
        if problem:
            raise ValueError(f"dns.existingZone.route53HostedZoneId {result.zone_id}: {problem}")
        return result.zone_id

    return Zone(id=found.apply(checked), name_servers=None)


@dataclass(frozen=True)
class LatencyRoutingArgs:
    zone: StackZone  # a Route53 one
    routed: RoutedName


class LatencyRouting(pulumi.ComponentResource):
    health_checks: dict[str, aws.route53.HealthCheck]  # region -> its endpoint's check
    regional_names: dict[str, str]  # region -> its own DNS name

    def __init__(self, name: str, args: LatencyRoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:LatencyRouting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        routed = args.routed
        self.health_checks, self.regional_names = {}, {}

        def routed_cname(
            resource: str,
            record_name: str,
            target: str,
            set_identifier: str,
            health_check: aws.route53.HealthCheck,
            *,
            latency_region: str | None = None,
        ) -> aws.route53.Record:
            """A latency record (latency_region) or else an equal-weight pool member."""
            return aws.route53.Record(
                resource,
                zone_id=args.zone.id,
                name=record_name,
                type="CNAME",
                records=[target],
                ttl=routed.ttl,
                set_identifier=set_identifier,
                health_check_id=health_check.id,
                latency_routing_policies=(
                    [aws.route53.RecordLatencyRoutingPolicyArgs(region=latency_region)] if latency_region else None
                ),
                weighted_routing_policies=(
                    None if latency_region else [aws.route53.RecordWeightedRoutingPolicyArgs(weight=1)]
                ),
                opts=child,
            )

        for endpoint in routed.endpoints:
            region = endpoint.region
            # The routed records below are CNAMEs to these names, since one routing group must
            # share a record type and a load balancer's host name can only be CNAMEd.
            args.zone.address_record(f"{name}-{region}", endpoint.host, endpoint.address, self)
            for host, address in endpoint.edges.items():
                args.zone.address_record(f"{name}-{region}-{host.split('.')[0]}", host, address, self)
            # Probed as a caller would reach the region: TLS with its own name as SNI and Host,
            # which its certificate covers; at its IP where it has one, else through its name.
            self.health_checks[region] = aws.route53.HealthCheck(
                f"{name}-{region}",
                type="HTTPS",
                fqdn=endpoint.host,
                enable_sni=True,
                ip_address=endpoint.address.apply(lambda a: a if is_ip(a) else None),
                port=routed.port,
                resource_path=routed.health_check_path,
                request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                failure_threshold=HEALTH_CHECK_FAILURES,
                tags={"Name": f"{routed.name}-{region}"},
                opts=child,
            )
            self.regional_names[region] = endpoint.host

        # Route53 keeps one latency record per AWS region: regions routed as the same AWS
        # region share it through an equally weighted, health-checked pool.
        for location, members in pools(routed.endpoints).items():
            if len(members) == 1:
                region = members[0].region
                target, check = self.regional_names[region], self.health_checks[region]
            else:
                target = f"{location}.pool.{routed.domain}"
                for member in members:
                    routed_cname(
                        f"{name}-pool-{location}-{member.region}",
                        target,
                        self.regional_names[member.region],
                        member.region,
                        self.health_checks[member.region],
                    )
                check = aws.route53.HealthCheck(
                    f"{name}-pool-{location}",
                    type="CALCULATED",
                    child_healthchecks=[self.health_checks[m.region].id for m in members],
                    child_health_threshold=1,  # the pool is up while any member is
                    tags={"Name": f"{routed.name}-pool-{location}"},
                    opts=child,
                )
            routed_cname(f"{name}-{location}-latency", routed.name, target, location, check, latency_region=location)
        self.register_outputs({"name": routed.name, "regionalNames": self.regional_names})
