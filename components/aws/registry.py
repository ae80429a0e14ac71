"""ECR: one repository per workload image in each AWS region, so nodes pull from their own
region. Tags are immutable (a tag always names the same digest), except the builder's layer
cache tag, which is rewritten on every build; every push is scanned."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components.aws.account import Account
from components.aws.keys import customer_key
from components.images import BUILD_CACHE_TAG
from workloads.contract import Image

KEEP_IMAGES = 30  # per repository; older images go, so immutable tags do not pile up forever

_LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the newest {KEEP_IMAGES} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
                "action": {"type": "expire"},
            }
        ]
    }
)


@dataclass(frozen=True)
class ImageRepositoriesArgs:
    stack: str
    account: Account


def repository_prefix(stack: str) -> str:
    """Images live at `<registry host>/meridian/<stack>/<image>`."""
    return f"meridian/{stack}"


class ImageRepositories(pulumi.ComponentResource):
    repositories: dict[Image, aws.ecr.Repository]
    registry: pulumi.Output[str]  # `<host>/meridian/<stack>`: push `<registry>/<image>:<tag>`
    auth: docker_build.RegistryArgs

    def __init__(self, name: str, args: ImageRepositoriesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:ImageRepositories", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = customer_key(name, "ECR image encryption", stack=args.stack, account=args.account, opts=child)
        prefix = repository_prefix(args.stack)
        self.repositories = {}
        for image in Image:
            repo = aws.ecr.Repository(
                f"{name}-{image.value}",
                name=f"{prefix}/{image.value}",
                image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
                image_tag_mutability_exclusion_filters=[
                    aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                        filter=BUILD_CACHE_TAG, filter_type="WILDCARD"
                    )
                ],
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=key.arn)
                ],
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image.value}", repository=repo.name, policy=_LIFECYCLE, opts=child)
            self.repositories[image] = repo

        first = self.repositories[next(iter(Image))]
        self.registry = first.repository_url.apply(lambda url: url.rsplit("/", 1)[0])
        # One token per region (an invoke), valid 12 hours: enough for one `pulumi up`.
        token = aws.ecr.get_authorization_token_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.auth = docker_build.RegistryArgs(
            address=token.proxy_endpoint.apply(lambda endpoint: endpoint.removeprefix("https://")),
            username=token.user_name,
            password=pulumi.Output.secret(token.password),
        )
        self.register_outputs({"registry": self.registry})
