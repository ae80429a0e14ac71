"""WorkloadImages: each workload image is built from its Dockerfile and referenced by digest."""

from __future__ import annotations

import re

import pulumi
import pulumi_docker_build as docker_build
import pytest

from components.images import BUILD_CACHE_TAG, WorkloadImages, WorkloadImagesArgs, dockerfile_path
from meridian.mocks import run_under_mocks
from tests.components.k8s.manifests import plain
from workloads.contract import Image

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/meridian-dev"


def _build(
    registry_auth: docker_build.RegistryArgs | None = None,
    tag: str = "dev-abc123",
    cache_registry: str | None = None,
):
    refs: dict[Image, str] = {}

    def program() -> None:
        args = WorkloadImagesArgs(REGISTRY, registry_auth, tag, cache_registry=cache_registry)
        images = WorkloadImages("us-east-1-images", args)
        for image, ref in images.refs.items():
            ref.apply(lambda value, image=image: refs.__setitem__(image, value))

    recorded = run_under_mocks(program).resources
    builds = {r.name: r.inputs for r in recorded if r.type == "docker-build:index:Image"}
    return builds, refs


def test_one_build_per_image_from_its_own_dockerfile_at_the_repo_root() -> None:
    builds, _ = _build()
    assert set(builds) == {f"us-east-1-images-{image}" for image in Image}
    for image in Image:
        inputs = builds[f"us-east-1-images-{image}"]
        assert inputs["context"] == {"location": "."}
        assert inputs["dockerfile"] == {"location": f"workloads/{image}/Dockerfile"}
        assert inputs["platforms"] == ["linux/amd64"]
        assert inputs["push"] is True
        assert inputs["tags"] == [f"{REGISTRY}/{image}:dev-abc123"]
        assert "registries" not in inputs


def test_builds_reuse_a_registry_layer_cache() -> None:
    builds, _ = _build()
    inputs = builds["us-east-1-images-server"]
    cache = f"{REGISTRY}/server:{BUILD_CACHE_TAG}"
    assert inputs["cacheFrom"] == [{"registry": {"ref": cache}}]
    (to,) = inputs["cacheTo"]
    assert to["registry"]["ref"] == cache and to["registry"]["mode"] == "max"


def test_a_registry_with_immutable_tags_keeps_its_cache_in_the_cache_registry() -> None:
    cache_registry = "europe-west4-docker.pkg.dev/meridian/meridian-dev-buildcache"
    builds, _ = _build(cache_registry=cache_registry)
    inputs = builds["us-east-1-images-server"]
    assert inputs["tags"] == [f"{REGISTRY}/server:dev-abc123"]
    assert inputs["cacheTo"][0]["registry"]["ref"] == f"{cache_registry}/server:{BUILD_CACHE_TAG}"
    assert inputs["cacheFrom"] == [{"registry": {"ref": f"{cache_registry}/server:{BUILD_CACHE_TAG}"}}]


def test_refs_are_pinned_by_digest() -> None:
    _, refs = _build()
    assert set(refs) == set(Image)
    for image, ref in refs.items():
        assert re.fullmatch(rf"{re.escape(REGISTRY)}/{image}:dev-abc123@sha256:[0-9a-f]{{64}}", ref), ref


def test_registry_credentials_are_passed_to_every_build() -> None:
    auth = docker_build.RegistryArgs(
        address=REGISTRY.split("/")[0], username="AWS", password=pulumi.Output.secret("pw")
    )
    builds, _ = _build(registry_auth=auth)
    for inputs in builds.values():
        (registry,) = plain(inputs["registries"])  # a secret: it holds the password
        assert registry == {"address": REGISTRY.split("/")[0], "username": "AWS", "password": "pw"}


@pytest.mark.parametrize("tag", ["", "latest:1", "a/b", "x@y", "has space"])
def test_a_tag_that_is_not_a_plain_tag_is_refused(tag: str) -> None:
    with pytest.raises(Exception, match="image tag"):
        _build(tag=tag)


def test_dockerfiles_live_beside_their_workloads() -> None:
    for image in Image:
        assert dockerfile_path(image).parts[-3:] == ("workloads", image.value, "Dockerfile")
