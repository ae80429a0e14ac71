"""Fleet: the top component. Per region it builds the cloud region (or reaches an existing
cluster) and its front door (components/front_door.py: public names, a managed certificate),
pushes the workload images to that region's registry and deploys the workloads; then the
global layer routes clients to every regional endpoint and serves the registry through a CDN.
The home region goes first: its SuperLink address (and, in a stack of several clusters, its
metrics receiver's) feeds every other region, and the stack's DNS zone is made with it, in its
cloud, since every cloud region's certificate is proven through that zone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp
import pulumi_random as random
import pulumi_tls as tls

from components.aws.certificates import RegionCertificate, RegionCertificateArgs
from components.aws.providers import certificate_provider
from components.aws.region import AwsModelRegistry, AwsRegion, AwsRegionArgs
from components.catalog import REGIONS, Cloud
from components.cloud_region import CloudRegionArgs
from components.cluster_access import ClusterAccess, ModelRegistry
from components.config import Region, StackConfig
from components.existing_cluster import ExistingCluster, ExistingClusterArgs
from components.front_door import FrontDoor, edge_wildcard, global_host, plain_front_door, region_host
from components.gcp.certificates import GatewayTls, GatewayTlsArgs
from components.gcp.region import GcpRegion, GcpRegionArgs
from components.gcp.services import ProjectServices
from components.geo import RegionalEndpoint, routing_locations
from components.global_routing import (
    AwsHome,
    GcpHome,
    GcpRegistries,
    GlobalRouting,
    GlobalRoutingArgs,
    registry_cdn_url,
    stack_zone,
)
from components.images import WorkloadImages, WorkloadImagesArgs
from components.k8s.region import RegionWorkloads, RegionWorkloadsArgs
from components.k8s.trust import FederationTrust, FederationTrustArgs
from components.stack_zone import StackZone

WORKLOADS_DIR = Path(__file__).resolve().parent.parent / "workloads"
ROUTING = "global"  # the GlobalRouting's name, whose children are named after it


# A region's /16 follows from its name alone, so reordering or adding regions in a stack never
# renumbers (and so replaces) an existing VPC: AWS regions count up from 10.0/16 and GCP regions
# from 10.128/16 in catalog order (new catalog regions are appended).
CIDR_BASE = {Cloud.AWS: 0, Cloud.GCP: 128}


def region_cidr(cloud: Cloud, region: str) -> str:
    """Each cloud region its own /16 of 10.0.0.0/8, so regions never overlap and can be peered."""
    names = list(REGIONS[cloud])
    if region not in names:
        raise ValueError(f"{region!r} is not a {cloud} region of the catalog")
    return f"10.{CIDR_BASE[cloud] + names.index(region)}.0.0/16"


def workloads_digest(root: Path = WORKLOADS_DIR) -> str:
    """A short hash of the workload sources: the image tag changes exactly when they do."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class FleetArgs:
    config: StackConfig
    stack: str


@dataclass(frozen=True)
class RegionOutcome:
    access: ClusterAccess
    front_door: FrontDoor
    inference_endpoint: pulumi.Output[str]  # what the region's own name answers with
    edge_endpoints: dict[str, pulumi.Output[str]]  # edge site host -> what its name answers with


def certificate_names(config: StackConfig, region: Region) -> list[str]:
    """What a cloud region's certificate covers: its own name first, the routed name, and the
    wildcard over its edge sites' names."""
    return [region_host(config, region.name), global_host(config), edge_wildcard(config, region.name)]


def public_endpoints(
    front_door: FrontDoor, workloads: RegionWorkloads
) -> tuple[pulumi.Output[str], dict[str, pulumi.Output[str]]]:
    """What the region's own name and each edge site's name (by host) answer with: a GCP
    region's Gateway holds its reserved IP for every host (known before the Gateway exists);
    elsewhere each has its own load balancer."""
    if front_door.gcp_address is not None:
        return front_door.gcp_address, dict.fromkeys(front_door.edge_hosts.values(), front_door.gcp_address)
    edges = {front_door.edge_hosts[site]: address for site, address in workloads.edge_endpoints.items()}
    return workloads.inference_endpoint, edges


class Fleet(pulumi.ComponentResource):
    regions: dict[str, RegionOutcome]
    routing: GlobalRouting | None
    exports: dict[str, pulumi.Input[object]]

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None):
        config, stack = args.config, args.stack
        home = config.home_region
        try:
            locations, project = _preflight(config)
        except ValueError as err:  # a stack the clouds cannot serve: a message, not a traceback
            raise pulumi.RunError(f"stack {stack}: {err}") from None
        super().__init__("meridian:fleet:Fleet", name, None, opts)

        tags = config.tags.as_dict(stack)
        image_tag = f"{stack}-{workloads_digest()}"
        ordered = [home, *[r for r in config.regions if r.name != home.name]]

        # Every stack sets `pulumi:disable-default-providers: ["*"]`: the packages without a
        # region get explicit providers too, which every child inherits.
        neutral = [
            tls.Provider("tls", opts=pulumi.ResourceOptions(parent=self)),
            random.Provider("random", opts=pulumi.ResourceOptions(parent=self)),
            docker_build.Provider("docker-build", opts=pulumi.ResourceOptions(parent=self)),
        ]
        child = pulumi.ResourceOptions(parent=self, providers=neutral)
        # One trust for the whole federation: its CA and node keys span every region.
        trust = FederationTrust("federation", FederationTrustArgs(config), opts=child)
        self.regions = {}
        aws_home_registry: AwsModelRegistry | None = None
        aws_registries: dict[str, aws.s3.Bucket] = {}  # every AWS region's, for the CDN
        gcp_registry: pulumi.Output[str] | None = None
        gcp_home: GcpRegion | None = None
        gcp_first: GcpRegion | None = None  # its provider and project serve an AWS home's Cloud CDN
        gcp_registries: dict[str, gcp.storage.Bucket] = {}  # every GCP region's, for the CDN
        global_home: AwsHome | GcpHome | None = None
        aws_providers: dict[str, aws.Provider] = {}
        # The project's APIs, once per stack: the first GCP region enables them for all.
        gcp_services: ProjectServices | None = None
        # The home's cloud serves it; made with the home, before any certificate is proven in it.
        zone: StackZone | None = None
        # Proofs written once per stack (the routed name is every region's): name -> the ACM
        # validation record's fqdn, or the Certificate Manager DNS authorization's id.
        acm_proofs: dict[str, pulumi.Output[str]] = {}
        gcp_proofs: dict[str, pulumi.Output[str]] = {}
        superlink: pulumi.Output[str] | None = None
        metrics_receiver: pulumi.Output[str] | None = None  # the home's, with a global view
        global_models: ModelRegistry | None = None  # the home's, followed by every region
        for region in ordered:
            names = plain_front_door(config, region)
            if region.cloud is Cloud.KUBERNETES:
                cluster_args = ExistingClusterArgs(region=region, home=region is home)
                access = ExistingCluster(region.name, cluster_args, opts=child).access
                front_door = names  # its pods terminate TLS with the stack's CA
            else:
                common = CloudRegionArgs(
                    config=config,
                    region=region,
                    stack=stack,
                    cidr=region_cidr(region.cloud, region.name),
                    model_registry_url=registry_cdn_url(config, region.cloud),
                    tags=tags,
                )
                if region.cloud is Cloud.AWS:
                    built = AwsRegion(
                        region.name, AwsRegionArgs(common=common, home_registry=aws_home_registry), opts=child
                    )
                    aws_providers[region.name] = built.provider
                    aws_registries[region.name] = built.model_registry.bucket
                    if region is home:
                        aws_home_registry = built.model_registry
                        zone = stack_zone(ROUTING, config, stack, built.provider, None, [], self)
                    assert zone is not None  # preflight: cloud regions have a cloud home
                    certificate = RegionCertificate(
                        f"{region.name}-certificate",
                        RegionCertificateArgs(names=certificate_names(config, region), zone=zone, proven=acm_proofs),
                        opts=pulumi.ResourceOptions(parent=self, providers=[built.provider]),
                    )
                    acm_proofs = acm_proofs | certificate.records
                    front_door = replace(names, acm_certificate_arn=certificate.arn)
                else:
                    built = GcpRegion(
                        region.name,
                        GcpRegionArgs(
                            common=common, project=project or "", registry_bucket=gcp_registry, services=gcp_services
                        ),
                        opts=child,
                    )
                    gcp_services, gcp_first = built.services, gcp_first or built
                    gcp_registries[region.name] = built.registry_bucket.bucket
                    if region is home:
                        gcp_home, gcp_registry = built, built.registry_bucket.bucket.name
                        zone = stack_zone(
                            ROUTING, config, stack, built.provider, built.project.id, [gcp_services], self
                        )
                    assert zone is not None  # preflight: cloud regions have a cloud home
                    gateway = GatewayTls(
                        f"{region.name}-gateway-tls",
                        GatewayTlsArgs(
                            prefix=f"meridian-{stack}",
                            region=region.name,
                            region_host=names.region_host,
                            global_host=global_host(config),
                            edge_hosts=names.edge_hosts,
                            zone=zone,
                            project=built.project.id,
                            services=[built.services],
                            proven=gcp_proofs,
                        ),
                        opts=pulumi.ResourceOptions(parent=self, providers=[built.provider]),
                    )
                    gcp_proofs = gcp_proofs | gateway.authorizations
                    front_door = replace(
                        names,
                        gcp_certificate_map=gateway.certificate_map,
                        gcp_address_name=gateway.address_name,
                        gcp_address=gateway.address,
                        gcp_ssl_policy=gateway.ssl_policy,
                    )
                access = built.access

            if region is home:
                global_models = access.global_models
            workloads = region_workloads(
                config,
                region,
                access,
                image_tag=image_tag,
                labels=tags,
                trust=trust,
                front_door=front_door,
                superlink=superlink,
                metrics_receiver=metrics_receiver,
                global_models=global_models,
                opts=child,
            )
            if region is home:
                superlink = workloads.superlink_address
                metrics_receiver = workloads.metrics_receiver_address
            endpoint, edges = public_endpoints(front_door, workloads)
            self.regions[region.name] = RegionOutcome(
                access=access, front_door=front_door, inference_endpoint=endpoint, edge_endpoints=edges
            )

        if gcp_home is not None:
            global_home = GcpHome(
                provider=gcp_home.provider, project=gcp_home.project, buckets=gcp_registries, home=home.name
            )
        if home.cloud is Cloud.AWS:
            global_home = AwsHome(
                provider=aws_providers[home.name],
                us_east_1=certificate_provider(aws_providers, tags, parent=self),
                registry_buckets=aws_registries,
                gcp=GcpRegistries(provider=gcp_first.provider, project=gcp_first.project, buckets=gcp_registries)
                if gcp_first
                else None,
            )

        self.routing = None
        if global_home is not None:
            assert zone is not None  # made with the home, whose cloud serves the global layer
            self.routing = GlobalRouting(
                ROUTING,
                GlobalRoutingArgs(
                    config=config,
                    home=global_home,
                    zone=zone,
                    endpoints=[
                        RegionalEndpoint(
                            region=r.name,
                            host=self.regions[r.name].front_door.region_host,
                            address=self.regions[r.name].inference_endpoint,
                            location=locations[r.name],
                            edges=self.regions[r.name].edge_endpoints,
                        )
                        for r in config.regions
                    ],
                ),
                # a GCP home's records and CDN wait for the project's APIs
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[gcp_services] if gcp_services else None)
                ),
            )

        assert global_models is not None  # the home goes first, and every home has one
        self.exports = {
            "regions": {
                name: {
                    "inferenceEndpoint": outcome.inference_endpoint,
                    "imageRegistry": outcome.access.image_registry,
                    "dataUrl": outcome.access.data_url,
                    "modelRegistryUrl": outcome.access.models.read_url,
                }
                for name, outcome in self.regions.items()
            },
            "globalModelUrl": global_models.read_url,
            "superlinkAddress": superlink,
            # The stack CA: what callers of `kubernetes` regions verify their HTTPS endpoints with.
            "caCertPem": trust.ca_cert_pem,
        }
        if metrics_receiver is not None:
            self.exports["metricsReceiverAddress"] = metrics_receiver
        if self.routing is not None:
            self.exports |= {
                "inferenceDnsName": self.routing.inference_name,
                "registryCdnUrl": self.routing.registry_url,
            }
            if self.routing.gcp_registry_url is not None:
                self.exports["gcpRegistryCdnUrl"] = self.routing.gcp_registry_url
            if zone is not None and zone.zone.name_servers is not None:  # a zone of its own, to delegate to
                self.exports["nameServers"] = zone.zone.name_servers
        self.register_outputs(self.exports)


def region_workloads(
    config: StackConfig,
    region: Region,
    access: ClusterAccess,
    *,
    image_tag: str,
    labels: dict[str, str],
    trust: FederationTrust,
    front_door: FrontDoor,
    superlink: pulumi.Output[str] | None,
    metrics_receiver: pulumi.Output[str] | None = None,
    global_models: ModelRegistry | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> RegionWorkloads:
    """A region's workload images, pushed to its own registry, and its workloads deployed from
    them once its cluster is ready. `superlink` is None at home, which runs the SuperLink;
    `metrics_receiver` is the home's, where the region's cluster sends its series if it does
    (None at home and in a stack of one cluster); `global_models` is the home's global
    registry, which the region's localizer follows."""
    images = WorkloadImages(
        f"{region.name}-images",
        WorkloadImagesArgs(
            registry=access.image_registry,
            registry_auth=access.registry_auth,
            tag=image_tag,
            cache_registry=access.build_cache_registry,
        ),
        opts=opts,
    )
    return RegionWorkloads(
        f"{region.name}-workloads",
        RegionWorkloadsArgs(
            config=config,
            region=region,
            access=access,
            images=images.refs,
            superlink_address=superlink,
            metrics_receiver=metrics_receiver,
            labels=labels,
            trust=trust,
            front_door=front_door,
            global_models=global_models,
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=access.depends_on)),
    )


def fleet_registry_url(config: StackConfig) -> str | None:
    """Where regions read artifacts: the CDN, an existing home's own registry URL, or (None)
    the home's registry bucket, which only regions of the home's cloud can read."""
    if config.home_region.kubernetes is not None:
        return config.home_region.kubernetes.model_registry_url
    return registry_cdn_url(config)


def _preflight(config: StackConfig) -> tuple[dict[str, str], str | None]:
    """What the stack needs beyond its own config, checked before the first registration:
    each region's global routing location, a way for every region to read the registry, a
    zone to prove every cloud region's certificate in, and the GCP project (`gcp:project`)."""
    home = config.home_region
    if fleet_registry_url(config) is None:
        strangers = [r.name for r in config.regions if r.cloud not in (home.cloud, Cloud.KUBERNETES)]
        if strangers:
            raise ValueError(
                f"with the CDN off, only {home.cloud} regions can read the registry bucket at "
                f"{home.name}; {', '.join(strangers)} cannot: set cdn.enabled: true"
            )
    locations = routing_locations(config.regions, home.cloud) if home.cloud is not Cloud.KUBERNETES else {}
    if home.cloud is Cloud.KUBERNETES:
        clouds = [r.name for r in config.regions if r.cloud is not Cloud.KUBERNETES]
        if clouds:
            raise ValueError(
                f"home {home.name} is an existing cluster, which serves no DNS zone; the managed "
                f"certificates of {', '.join(clouds)} are proven through the stack's zone: home the "
                "fleet in a cloud region instead"
            )
    if home.cloud is Cloud.GCP:
        aws_regions = [r.name for r in config.regions if r.cloud is Cloud.AWS]
        if aws_regions:
            raise ValueError(
                f"home {home.name} is on GCP, whose geo routing health-checks IP endpoints only; "
                f"AWS load balancers ({', '.join(aws_regions)}) answer with hostnames: home the "
                "fleet in an AWS region instead"
            )
    if not any(r.cloud is Cloud.GCP for r in config.regions):
        return locations, None
    project = pulumi.Config("gcp").get("project")
    if not project:
        raise ValueError("it has GCP regions: set `gcp:project` in its stack file")
    return locations, project
