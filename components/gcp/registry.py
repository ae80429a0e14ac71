"""Artifact Registry: one Docker repository per GCP region, tags immutable, so nodes pull
from their own region and a tag always names the same digest."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp


@dataclass(frozen=True)
class ArtifactRepositoryArgs:
    region: str
    project: str
    repository_id: str
    labels: dict[str, str] = field(default_factory=dict)


class ArtifactRepository(pulumi.ComponentResource):
    repository: gcp.artifactregistry.Repository
    registry: pulumi.Output[str]  # `<region>-docker.pkg.dev/<project>/<repo>`: push `<registry>/<image>`
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
            labels=args.labels,
            opts=pulumi.ResourceOptions(parent=self),
        )
        host = f"{args.region}-docker.pkg.dev"
        self.registry = pulumi.Output.concat(host, "/", args.project, "/", self.repository.repository_id)
        # The deployer's own short-lived OAuth token (one invoke per region), not a key file.
        client = gcp.organizations.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.auth = docker_build.RegistryArgs(
            address=host, username="oauth2accesstoken", password=pulumi.Output.secret(client.access_token)
        )
        self.register_outputs({"registry": self.registry})
