"""The stack's DNS zone, whichever cloud serves it (Route53 at an AWS home, Cloud DNS at a GCP
home), as everything that writes into it sees it. It exists before the regions, since their
certificates are proven through it (ACM validation records, Certificate Manager DNS
authorizations) whatever cloud the region is on; the routing records follow once the regions'
endpoints are known. The zone is the stack's own or an existing one (`dns.existingZone`);
created or looked up in components/aws/dns.py and components/gcp/dns.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.catalog import Cloud
from components.geo import Zone, is_ip


def fqdn(name: str) -> str:
    """A name with its trailing dot, as Cloud DNS record names and targets must be."""
    return name if name.endswith(".") else f"{name}."


@dataclass(frozen=True)
class StackZone:
    cloud: Cloud  # AWS: a Route53 hosted zone; GCP: a Cloud DNS managed zone
    zone: Zone
    provider: aws.Provider | gcp.Provider  # the home region's: both DNS services are global
    project: str | None  # GCP: the managed zone's project
    ttl: int  # the stack's (dns.ttlSeconds)
    # What every record waits for besides the zone (a GCP home's project APIs)
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    @property
    def id(self) -> pulumi.Output[str]:
        return self.zone.id

    def record(
        self,
        resource_name: str,
        name: pulumi.Input[str],
        type_: pulumi.Input[str],
        values: Sequence[pulumi.Input[str]],
        parent: pulumi.Resource,
        *,
        ttl: int | None = None,
    ) -> aws.route53.Record | gcp.dns.RecordSet:
        """One plain record set. CNAME targets are written as given (end them with a dot:
        Cloud DNS needs it, Route53 accepts it)."""
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=list(self.depends_on))
        if self.cloud is Cloud.AWS:
            return aws.route53.Record(
                resource_name,
                zone_id=self.id,
                name=name,
                type=type_,
                records=list(values),
                ttl=ttl or self.ttl,
                opts=opts,
            )
        return gcp.dns.RecordSet(
            resource_name,
            project=self.project,
            managed_zone=self.id,
            name=pulumi.Output.from_input(name).apply(fqdn),
            type=type_,
            rrdatas=list(values),
            ttl=ttl or self.ttl,
            opts=opts,
        )

    def address_record(
        self, resource_name: str, name: str, address: pulumi.Output[str], parent: pulumi.Resource
    ) -> aws.route53.Record | gcp.dns.RecordSet:
        """`name` answers with a load balancer's address: an A record for an IP (GCP, many
        on-prem balancers), else a CNAME to its host name (AWS ELB)."""
        type_ = address.apply(lambda a: "A" if is_ip(a) else "CNAME")
        # Route53 stores a CNAME target as given; Cloud DNS wants it fully qualified.
        target = address if self.cloud is Cloud.AWS else address.apply(lambda a: a if is_ip(a) else fqdn(a))
        return self.record(resource_name, name, type_, [target], parent)
