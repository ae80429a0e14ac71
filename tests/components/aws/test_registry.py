"""ECR per AWS region: a repository per workload image, immutable tags (only the builder's
cache tag is rewritten), scanned on push, encrypted with a customer key."""

from __future__ import annotations

from components.aws.registry import repository_prefix
from components.catalog import Cloud
from components.images import BUILD_CACHE_TAG
from meridian.mocks import Inventory
from tests.components.aws.arns import key_arn
from tests.components.cloud_queries import named, pushed_images, regions_on
from workloads.contract import Image

REPOSITORY = "aws:ecr/repository:Repository"


def test_every_image_has_a_hardened_repository_in_every_aws_region(stack: str, inventory: Inventory) -> None:
    regions = regions_on(stack, Cloud.AWS)
    assert len(inventory.of_type(REPOSITORY)) == len(regions) * len(Image)
    for region in regions:
        key = named(inventory, f"{region.name}-ecr-key", "aws:kms/key:Key")
        for image in Image:
            repo = named(inventory, f"{region.name}-ecr-{image.value}", REPOSITORY)
            assert repo.region == region.name
            assert repo.inputs["name"] == f"{repository_prefix(stack)}/{image.value}"
            assert repo.inputs["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
            assert repo.inputs["imageTagMutabilityExclusionFilters"] == [
                {"filter": BUILD_CACHE_TAG, "filterType": "WILDCARD"}
            ]
            assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
            assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key_arn(key)}]


def test_images_are_pushed_to_their_regions_registry(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        host = f"123456789012.dkr.ecr.{region.name}.amazonaws.com"
        for image, tag, registry in pushed_images(inventory, region.name):
            assert tag.startswith(f"{host}/meridian/{stack}/{image.value}:")
            assert registry["address"] == host
            assert registry["username"] == "AWS"
