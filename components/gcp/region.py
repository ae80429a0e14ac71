"""One GCP region of the fleet: network, private GKE with its node pools, the region's data
bucket, an Artifact Registry repository, the workloads' service accounts, and at home the model
registry bucket. Everything goes through this region's own provider."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.catalog import Cloud, gcp_gpu_zones
from components.cloud_region import CloudRegionArgs, artifact_prefix
from components.cluster_access import ClusterAccess, server_service_accounts, trainer_service_accounts
from components.gcp.cluster import GkeCluster, GkeClusterArgs
from components.gcp.identity import (
    BucketGrant,
    WorkloadServiceAccount,
    WorkloadServiceAccountArgs,
    read_bucket,
    write_prefix,
)
from components.gcp.keys import KeyRing
from components.gcp.labels import gcp_labels
from components.gcp.network import GcpNetwork, GcpNetworkArgs
from components.gcp.project import Project, lookup_project
from components.gcp.registry import ArtifactRepository, ArtifactRepositoryArgs
from components.gcp.services import ProjectServices, ProjectServicesArgs, required_apis
from components.gcp.storage import GcsBucket, GcsBucketArgs


def account_suffix(stack: str, region: str) -> str:
    """Service account ids are 6-30 characters and project-wide: a stable short hash."""
    return hashlib.sha256(f"{stack}/{region}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class GcpRegionArgs:
    common: CloudRegionArgs  # its tags become the provider's default labels
    project: str
    registry_bucket: pulumi.Output[str] | None  # home's registry bucket when home is on GCP
    # The project's APIs, registered by the stack's first GCP region (None: this one).
    services: ProjectServices | None


class GcpRegion(pulumi.ComponentResource):
    provider: gcp.Provider
    access: ClusterAccess
    data_bucket: GcsBucket
    registry_bucket: GcsBucket | None  # at home only
    gke: GkeCluster
    project: Project
    services: ProjectServices

    def __init__(self, name: str, args: GcpRegionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GcpRegion", name, None, opts)
        common = args.common
        region, labels = common.region, gcp_labels(common.tags)
        self.provider = gcp.Provider(
            f"gcp-{region.name}",
            project=args.project,
            region=region.name,
            default_labels=labels,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.services = args.services or ProjectServices(
            "gcp-apis",
            ProjectServicesArgs(
                project=args.project,
                apis=required_apis(gcp_home=common.config.home_region.cloud is Cloud.GCP),
                provider=self.provider,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Every child, and every invoke, waits until the project's APIs are enabled.
        child = pulumi.ResourceOptions(parent=self, providers=[self.provider], depends_on=[self.services])
        invoke = pulumi.InvokeOutputOptions(provider=self.provider, depends_on=[self.services])
        project = self.project = lookup_project(args.project, self.provider, depends_on=[self.services])
        storage_agent = gcp.storage.get_project_service_account_output(project=args.project, opts=invoke)
        # The catalog's first zone offering the accelerator (the config refused a region with none).
        gpu_zone = gcp_gpu_zones(region.name, region.gpu.accelerator)[0]
        suffix = account_suffix(common.stack, region.name)

        keys = KeyRing(
            f"{name}-keys",
            ring_name=common.unique_name,
            location=region.name,
            project=args.project,
            opts=child,
        )
        network = GcpNetwork(
            f"{name}-network", GcpNetworkArgs(region=region.name, project=args.project, cidr=common.cidr), opts=child
        )
        self.gke = GkeCluster(
            f"{name}-gke",
            GkeClusterArgs(
                cluster_name=common.unique_name,
                region=region,
                project=project,
                network=network,
                keys=keys,
                api_allowed_cidrs=common.config.network.api_allowed_cidrs,
                gpu_zone=gpu_zone,
                account_id_prefix=f"nodes-{suffix}",
                node_labels=labels,
            ),
            opts=child,
        )

        def bucket(purpose: str) -> GcsBucket:
            return GcsBucket(
                f"{name}-{purpose}",
                GcsBucketArgs(
                    purpose=purpose,
                    location=region.name,
                    project=args.project,
                    keys=keys,
                    storage_agent=storage_agent.email_address.apply(lambda e: f"serviceAccount:{e}"),
                ),
                opts=child,
            )

        self.data_bucket = bucket("data")
        self.registry_bucket = bucket("registry") if common.is_home else None
        registry_bucket = self.registry_bucket.bucket.name if self.registry_bucket else args.registry_bucket

        images = ArtifactRepository(
            f"{name}-artifacts",
            ArtifactRepositoryArgs(region=region.name, project=args.project, repository_id=f"meridian-{common.stack}"),
            opts=child,
        )

        trainer_grants = [read_bucket(self.data_bucket.bucket.name)]
        server_grants: list[BucketGrant] = []
        if registry_bucket is not None:
            trainer_grants.append(write_prefix(registry_bucket, artifact_prefix(region.name)))
            server_grants.append(read_bucket(registry_bucket))
        # Each workload's account is trusted by that workload's ServiceAccounts alone.
        accounts = {"trainer": trainer_service_accounts(region.name), "server": server_service_accounts(region.name)}

        def service_account(role: str, grants: list[BucketGrant]) -> WorkloadServiceAccount:
            return WorkloadServiceAccount(
                f"{name}-{role}",
                WorkloadServiceAccountArgs(
                    account_id=f"{role}-{suffix}", project=project, service_accounts=accounts[role], grants=grants
                ),
                opts=child,
            )

        trainer = service_account("trainer", trainer_grants)
        server = service_account("server", server_grants)

        registry_url = common.model_registry_url or (
            pulumi.Output.concat("gs://", registry_bucket) if registry_bucket is not None else None
        )
        if registry_url is None:
            raise ValueError(f"{region.name}: no model registry URL (enable the CDN)")
        self.access = ClusterAccess(
            provider=self.gke.provider,
            image_registry=images.registry,
            data_url=pulumi.Output.concat("gs://", self.data_bucket.bucket.name),
            model_registry_url=registry_url,
            trainer_identity=trainer.identity,
            server_identity=server.identity,
            depends_on=list(self.gke.node_pools),
            registry_auth=images.auth,
            build_cache_registry=images.cache_registry,
        )
        self.register_outputs(
            {
                "cluster": self.gke.cluster.name,
                "dataBucket": self.data_bucket.bucket.name,
                "imageRegistry": images.registry,
            }
        )
