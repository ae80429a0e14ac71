"""Route53 latency routing: every regional inference endpoint gets its own name, a health
check on the readiness path, and a latency record under the fleet's inference name, so clients
reach the nearest healthy region."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.geo import RegionalEndpoint, is_ip

HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_FAILURES = 3  # ~90 s of failures before a region leaves the answer


@dataclass(frozen=True)
class LatencyRoutingArgs:
    zone_id: pulumi.Input[str]
    domain: str  # the zone's domain
    name: str  # the latency-routed name, under domain
    endpoints: list[RegionalEndpoint]
    health_check_path: str
    port: int
    ttl: int
    tags: dict[str, str] = field(default_factory=dict)


class LatencyRouting(pulumi.ComponentResource):
    health_checks: dict[str, aws.route53.HealthCheck]
    regional_names: dict[str, str]  # region -> its own DNS name

    def __init__(self, name: str, args: LatencyRoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:LatencyRouting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_checks, self.regional_names = {}, {}
        for endpoint in args.endpoints:
            region = endpoint.region
            regional_name = f"{region}.{args.domain}"
            # A hostname can only be CNAMEd; an IP gets an A record. All latency records below
            # are then CNAMEs to these names, since one latency group must share a record type.
            aws.route53.Record(
                f"{name}-{region}",
                zone_id=args.zone_id,
                name=regional_name,
                type=endpoint.address.apply(lambda a: "A" if is_ip(a) else "CNAME"),
                records=[endpoint.address],
                ttl=args.ttl,
                opts=child,
            )
            check = aws.route53.HealthCheck(
                f"{name}-{region}",
                type="HTTP",
                fqdn=endpoint.address.apply(lambda a: None if is_ip(a) else a),
                ip_address=endpoint.address.apply(lambda a: a if is_ip(a) else None),
                port=args.port,
                resource_path=args.health_check_path,
                request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                failure_threshold=HEALTH_CHECK_FAILURES,
                tags={**args.tags, "Name": f"{args.name}-{region}"},
                opts=child,
            )
            aws.route53.Record(
                f"{name}-{region}-latency",
                zone_id=args.zone_id,
                name=args.name,
                type="CNAME",
                records=[regional_name],
                ttl=args.ttl,
                set_identifier=region,
                latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=endpoint.location)],
                health_check_id=check.id,
                opts=child,
            )
            self.health_checks[region] = check
            self.regional_names[region] = regional_name
        self.register_outputs({"name": args.name, "regional_names": self.regional_names})
