"""Artifact Registry: one Docker repository per GCP region, tags immutable, so nodes pull
from their own region and a tag always names the same digest; beside it a mutable repository
for the builder's layer cache (Artifact Registry cannot exempt one tag from immutability),
which keeps only recent cache manifests."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp

CACHE_RETENTION_DAYS = 30


@dataclass(frozen=True)
class ArtifactRepositoryArgs:
    region: str
    project: str
    repository_id: str


class ArtifactRepository(pulumi.ComponentResource):
    repository: gcp.artifactregistry.Repository
    registry: pulumi.Output[str]  # `<region>-docker.pkg.dev/<project>/<repo>`: push `<registry>/<image>`
    cache_registry: pulumi.Output[str]  # mutable: `<cache_registry>/<image>:buildcache`
    auth: docker_build.RegistryArgs

    def __init__(self, name: str, args: ArtifactRepositoryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:ArtifactRepository", name, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        cache = gcp.artifactregistry.Repository(
            f"{name}-cache",
            project=args.project,
            location=args.region,
            repository_id=f"{args.repository_id}-cache",
            format="DOCKER",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=False),
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="expire-old-cache",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        older_than=f"{CACHE_RETENTION_DAYS * 86400}s"
                    ),
                )
            ],
            labels={"meridian-purpose": "build-cache"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        host = f"{args.region}-docker.pkg.dev"
        self.registry = pulumi.Output.concat(host, "/", args.project, "/", self.repository.repository_id)
        self.cache_registry = pulumi.Output.concat(host, "/", args.project, "/", cache.repository_id)
        # The deployer's own short-lived OAuth token (one invoke per region), not a key file.
        client = gcp.organizations.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.auth = docker_build.RegistryArgs(
            address=host, username="oauth2accesstoken", password=pulumi.Output.secret(client.access_token)
        )
        self.register_outputs({"registry": self.registry})
