"""Artifact Registry per GCP region: immutable image tags, a separate mutable repository for
the builder's layer cache, and pushes authenticated with the deployer's short-lived token."""

from __future__ import annotations

from components.catalog import Cloud
from meridian.mocks import Inventory
from tests.components.cloud_queries import named, pushed_images, regions_on

REPOSITORY = "gcp:artifactregistry/repository:Repository"


def test_each_gcp_region_has_an_immutable_repository_and_a_cache(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        repo = named(inventory, f"{region.name}-artifacts", REPOSITORY)
        assert repo.region == region.name and repo.inputs["location"] == region.name
        assert repo.inputs["format"] == "DOCKER" and repo.inputs["dockerConfig"] == {"immutableTags": True}
        cache = named(inventory, f"{region.name}-artifacts-cache", REPOSITORY).inputs
        assert cache["dockerConfig"] == {"immutableTags": False} and cache["cleanupPolicies"]


def test_images_are_pushed_to_their_regions_repository(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        for _, tag, registry in pushed_images(inventory, region.name):
            assert tag.startswith(f"{region.name}-docker.pkg.dev/")
            assert registry["address"] == f"{region.name}-docker.pkg.dev"
            assert registry["username"] == "oauth2accesstoken"
