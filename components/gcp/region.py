"""One GCP region of the fleet: network, private GKE with its node pools, the region's data
bucket, its model registry bucket (at home also the global model's) with its Ed25519 signer in
Cloud KMS, an Artifact Registry repository, and the workloads' service accounts. Everything goes
through this region's own provider."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.catalog import Cloud, gcp_gpu_zones
from components.cloud_region import GLOBAL_MODELS, CloudRegionArgs, artifact_prefix
from components.cluster_access import (
    ClusterAccess,
    ModelRegistry,
    localizer_service_accounts,
    server_service_accounts,
    trainer_service_accounts,
)
from components.gcp.cluster import GkeCluster, GkeClusterArgs
from components.gcp.identity import (
    WorkloadServiceAccount,
    WorkloadServiceAccountArgs,
    publish_prefix,
    read_bucket,
)
from components.gcp.keys import KeyRing
from components.gcp.labels import gcp_labels
from components.gcp.network import GcpNetwork, GcpNetworkArgs
from components.gcp.project import Project, lookup_project
from components.gcp.registry import ArtifactRepository, ArtifactRepositoryArgs
from components.gcp.services import ProjectServices, ProjectServicesArgs, required_apis
from components.gcp.signing import ModelSigner, ModelSignerArgs
from components.gcp.storage import GcsBucket, GcsBucketArgs


def account_suffix(stack: str, region: str) -> str:
    """Service account ids are 6-30 characters and project-wide: a stable short hash."""
    return hashlib.sha256(f"{stack}/{region}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class GcpRegionArgs:
    common: CloudRegionArgs  # its tags become the provider's default labels
    project: str
    registry_bucket: pulumi.Output[str] | None  # home's registry bucket when home is on GCP (None: this one)
    # The project's APIs, registered by the stack's first GCP region (None: this one).
    services: ProjectServices | None


class GcpRegion(pulumi.ComponentResource):
    provider: gcp.Provider
    access: ClusterAccess
    data_bucket: GcsBucket
    registry_bucket: GcsBucket  # the region's own; at home also the global model's
    signer: ModelSigner
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
        self.registry_bucket = bucket("registry")
        registry = self.registry_bucket.bucket.name
        home_registry = registry if common.is_home else args.registry_bucket

        images = ArtifactRepository(
            f"{name}-artifacts",
            ArtifactRepositoryArgs(region=region.name, project=args.project, repository_id=f"meridian-{common.stack}"),
            opts=child,
        )

        # Publishers read the whole bucket (publish's immutability probe lists, which IAM checks
        # on the bucket, out of a prefix condition's reach) and create and replace objects under
        # their own prefix only. The home's trainer (the SuperLink's ServerApp) publishes the
        # global model; each localizer its region's variants.
        trainer_grants = [read_bucket(self.data_bucket.bucket.name)]
        if common.is_home:
            trainer_grants += [read_bucket(registry), publish_prefix(registry, artifact_prefix(GLOBAL_MODELS))]
        localizer_grants = [
            read_bucket(self.data_bucket.bucket.name),
            read_bucket(registry),
            publish_prefix(registry, artifact_prefix(region.name)),
        ]
        if common.model_registry_url is None and not common.is_home and home_registry is not None:
            # No CDN: the global model is read from the home's bucket, and nothing else of it.
            localizer_grants.append(read_bucket(home_registry, artifact_prefix(GLOBAL_MODELS)))
        # Each workload's account is trusted by that workload's ServiceAccounts alone.
        accounts = {
            "trainer": (trainer_service_accounts(region.name), trainer_grants),
            "server": (server_service_accounts(region.name), [read_bucket(registry)]),
            "localizer": (localizer_service_accounts(region.name), localizer_grants),
        }
        identities = {
            role: WorkloadServiceAccount(
                f"{name}-{role}",
                WorkloadServiceAccountArgs(
                    account_id=f"{role}-{suffix}", project=project, service_accounts=refs, grants=grants
                ),
                opts=child,
            )
            for role, (refs, grants) in accounts.items()
        }
        signers = ["localizer", "trainer"] if common.is_home else ["localizer"]
        self.signer = ModelSigner(
            f"{name}-models-signer",
            ModelSignerArgs(
                keys=keys,
                project=args.project,
                location=region.name,
                signers=[identities[role].account.member for role in signers],
            ),
            opts=child,
        )

        def models(prefix: str) -> ModelRegistry:
            """Where this bucket's `prefix` is published, and read: through the Cloud CDN
            serving GCP's registries (components/global_routing.py), else from the bucket itself."""
            store = pulumi.Output.format("gs://{0}/{1}", registry, prefix)
            read = f"{common.model_registry_url}/{prefix}" if common.model_registry_url else store
            return ModelRegistry(store_url=store, read_url=read, signer=self.signer.signer)

        self.access = ClusterAccess(
            provider=self.gke.provider,
            image_registry=images.registry,
            data_url=pulumi.Output.concat("gs://", self.data_bucket.bucket.name),
            trainer_identity=identities["trainer"].identity,
            server_identity=identities["server"].identity,
            depends_on=list(self.gke.node_pools),
            registry_auth=images.auth,
            build_cache_registry=images.cache_registry,
            models=models(region.name),
            global_models=models(GLOBAL_MODELS) if common.is_home else None,
            localizer_identity=identities["localizer"].identity,
        )
        self.register_outputs(
            {
                "cluster": self.gke.cluster.name,
                "dataBucket": self.data_bucket.bucket.name,
                "registryBucket": registry,
                "imageRegistry": images.registry,
            }
        )
