"""The fleet's global layer, served by the home region's cloud: the stack's DNS zone, latency
(Route53) or geo (Cloud DNS) routing with HTTPS health checks over every regional endpoint at
`inference.<domain>`, every region's and edge site's own name, and the CDN in front of the
model registries at `models.<domain>`: `/<region>/*` serves each region of the home's cloud from
its own registry bucket, `/global/*` the home's global model. CloudFront reaches S3 only, so an
AWS home with GCP regions also serves theirs through Cloud CDN at `models-gcp.<domain>` (same
`/<region>/*` paths, named in the home's Route53 zone); the global model stays on CloudFront.

The zone is the stack's own, whose name servers (the `nameServers` export) the parent domain
must delegate to before the certificates validate, or an existing, delegated one named by
`dns.existingZone`, looked up instead of created (then there is nothing to delegate). The Fleet
makes it (`stack_zone`) right after the home region's cloud, before any other region: every
cloud region's certificate is proven through it (components/aws/certificates.py,
components/gcp/certificates.py). The routing records follow once the regions' endpoints exist.

Every name here is served over HTTPS only (PUBLIC_TLS_PORT): each region terminates TLS for
its own name, its edge sites' and the routed name with a managed certificate (ACM, Certificate
Manager) or, on an existing cluster, in its pods with the stack's CA (which its callers then
trust); the health checks probe that same TLS port. The routed name answers with the regions'
load balancers themselves: no CDN fronts the inference API, whose responses are per caller and
not cacheable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws.cdn import RegistryCdn as AwsRegistryCdn
from components.aws.cdn import RegistryCdnArgs as AwsRegistryCdnArgs
from components.aws.dns import LatencyRouting, LatencyRoutingArgs, hosted_zone
from components.catalog import Cloud
from components.config import StackConfig
from components.front_door import global_host
from components.gcp.cdn import RegistryCdn as GcpRegistryCdn
from components.gcp.cdn import RegistryCdnArgs as GcpRegistryCdnArgs
from components.gcp.dns import GeoRouting, GeoRoutingArgs, managed_zone
from components.gcp.project import Project
from components.geo import RegionalEndpoint, RoutedName
from components.stack_zone import StackZone
from workloads.contract import PUBLIC_TLS_PORT

ROUTING_TYPE = "meridian:global_routing:GlobalRouting"
REGISTRY_LABEL = "models"  # the registry CDN answers at models.<domain>
GCP_REGISTRY_LABEL = "models-gcp"  # an AWS home's Cloud CDN for its GCP regions' registries


def stack_zone(
    routing: str,
    config: StackConfig,
    stack: str,
    provider: aws.Provider | gcp.Provider,
    project: str | None,
    depends_on: list[pulumi.Resource],
    parent: pulumi.Resource,
) -> StackZone:
    """The stack's zone in the home's cloud (an AWS `provider`, or a GCP one with its
    `project`), created or looked up, before any region's certificate needs it. `routing`
    names the GlobalRouting whose child the zone was until it had to exist ahead of the
    regions: the alias keeps the zone (and the parent domain's delegation to it) rather than
    replacing it. `depends_on`: what its lookups and records wait for (a GCP home's APIs)."""
    moved = pulumi.Alias(parent=pulumi.create_urn(routing, ROUTING_TYPE, parent=parent))
    opts = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on, aliases=[moved])
    name, domain, existing = f"{routing}-zone", config.dns.domain, config.dns.existing_zone
    if isinstance(provider, aws.Provider):
        zone = hosted_zone(name, domain, f"Meridian stack {stack}", existing, opts)
        return StackZone(cloud=Cloud.AWS, zone=zone, provider=provider, project=None, ttl=config.dns.ttl_seconds)
    assert project is not None  # a GCP home's zone lives in the stack's project
    zone = managed_zone(name, f"meridian-{stack}", domain, project, existing, opts)
    return StackZone(
        cloud=Cloud.GCP,
        zone=zone,
        provider=provider,
        project=project,
        ttl=config.dns.ttl_seconds,
        depends_on=depends_on,
    )


def registry_cdn_host(config: StackConfig, cloud: Cloud) -> str | None:
    """The host name of the CDN serving `cloud`'s registry buckets, known before anything exists;
    None where none does (CDN off, an existing-cluster home, AWS regions of a GCP home, which the
    Fleet refuses). The home's cloud is served at models.<domain>; GCP regions of an AWS home at
    models-gcp.<domain>, as CloudFront's origin access control reaches S3 only."""
    home = config.home_region.cloud
    if not config.cdn.enabled or home is Cloud.KUBERNETES or cloud is Cloud.KUBERNETES:
        return None
    if cloud is home:
        return f"{REGISTRY_LABEL}.{config.dns.domain}"
    if (home, cloud) == (Cloud.AWS, Cloud.GCP):
        return f"{GCP_REGISTRY_LABEL}.{config.dns.domain}"
    return None


def registry_cdn_url(config: StackConfig, cloud: Cloud | None = None) -> str | None:
    """Where the regions of `cloud` (default: the home's, which also serves the global model)
    read artifacts: `https://<cdn>`, under which each region's are at `/<region>`; None: from the
    buckets themselves."""
    host = registry_cdn_host(config, cloud or config.home_region.cloud)
    return f"https://{host}" if host else None


@dataclass(frozen=True)
class GcpRegistries:
    """A stack's GCP regions, for the Cloud CDN that serves their registries (under an AWS home
    beside CloudFront; under a GCP home, see GcpHome)."""

    provider: gcp.Provider  # a GCP region's (the home's, or the first's): the CDN is global
    project: Project
    buckets: Mapping[str, gcp.storage.Bucket]  # every GCP region's own registry


@dataclass(frozen=True)
class AwsHome:
    provider: aws.Provider  # the home region's: Route53 and CloudFront are global services
    us_east_1: aws.Provider  # CloudFront certificates live in us-east-1 only
    registry_buckets: dict[str, aws.s3.Bucket]  # every AWS region's (the CDN serves each at /<region>)
    gcp: GcpRegistries | None = None  # the stack's GCP regions, if any


@dataclass(frozen=True)
class GcpHome(GcpRegistries):
    """A GCP home: its registries' CDN also serves the global model, from the home's bucket."""

    home: str  # the home region: its registry also holds the global model


@dataclass(frozen=True)
class GlobalRoutingArgs:
    config: StackConfig
    home: AwsHome | GcpHome
    zone: StackZone  # stack_zone's, in the home's cloud
    endpoints: list[RegionalEndpoint]


class GlobalRouting(pulumi.ComponentResource):
    inference_name: str
    registry_url: str | None
    gcp_registry_url: str | None  # an AWS home's Cloud CDN for its GCP regions; None: none

    def __init__(self, name: str, args: GlobalRoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ROUTING_TYPE, name, None, opts)
        config, zone = args.config, args.zone
        domain = config.dns.domain
        self.inference_name = global_host(config)
        self.registry_url = registry_cdn_url(config)
        self.gcp_registry_url = None
        registry_domain = f"{REGISTRY_LABEL}.{domain}"
        home = args.home
        # The same name over the same endpoints whichever cloud serves the zone.
        routed = RoutedName(
            domain=domain,
            name=self.inference_name,
            endpoints=args.endpoints,
            health_check_path=config.dns.health_check_path,
            port=PUBLIC_TLS_PORT,
            ttl=config.dns.ttl_seconds,
        )
        component = pulumi.ResourceOptions(parent=self, providers=[home.provider])
        if isinstance(home, AwsHome):
            LatencyRouting(f"{name}-latency", LatencyRoutingArgs(zone=zone, routed=routed), opts=component)
            if self.registry_url:
                AwsRegistryCdn(
                    f"{name}-registry-cdn",
                    AwsRegistryCdnArgs(
                        buckets=home.registry_buckets,
                        home=config.home,
                        domain_name=registry_domain,
                        zone_id=zone.id,
                        settings=config.cdn,
                        us_east_1=home.us_east_1,
                    ),
                    opts=component,
                )
            gcp_domain = registry_cdn_host(config, Cloud.GCP)
            if home.gcp is not None and gcp_domain is not None:
                on_gcp = pulumi.ResourceOptions(parent=self, providers=[home.gcp.provider])
                cdn = GcpRegistryCdn(
                    f"{name}-gcp-registry-cdn",
                    GcpRegistryCdnArgs(
                        buckets=home.gcp.buckets,
                        home=None,  # the global model is CloudFront's
                        domain_name=gcp_domain,
                        project=home.gcp.project,
                        settings=config.cdn,
                    ),
                    opts=on_gcp,
                )
                zone.record(f"{name}-gcp-registry", gcp_domain, "A", [cdn.address.address], self)
                self.gcp_registry_url = cdn.url
        else:
            GeoRouting(
                f"{name}-geo",
                GeoRoutingArgs(project=home.project.id, zone=zone, routed=routed),
                opts=component,
            )
            if self.registry_url:
                cdn = GcpRegistryCdn(
                    f"{name}-registry-cdn",
                    GcpRegistryCdnArgs(
                        buckets=home.buckets,
                        home=home.home,
                        domain_name=registry_domain,
                        project=home.project,
                        settings=config.cdn,
                    ),
                    opts=component,
                )
                zone.record(f"{name}-registry", registry_domain, "A", [cdn.address.address], self)
        self.register_outputs(
            {
                "inferenceName": self.inference_name,
                "registryUrl": self.registry_url,
                "gcpRegistryUrl": self.gcp_registry_url,
            }
        )
