"""Images: pinned, and only from the stack's registries."""

from __future__ import annotations

import pytest

from policy.rules.kubernetes.images import IMAGE_FROM_STACK_REGISTRIES, IMAGE_PINNED, split_image
from tests.policy.checks import assert_complies, assert_violates
from tests.policy.rules.kubernetes.workloads import IMAGE, deployment, hardened_container


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("nginx", ("nginx", None, None)),
        ("localhost:5001/meridian/server:v1", ("localhost:5001/meridian/server", "v1", None)),
        ("r.io/a@sha256:ab", ("r.io/a", None, "sha256:ab")),
    ],
)
def test_image_references_split_into_repository_tag_and_digest(image: str, parts: tuple) -> None:
    assert split_image(image) == parts


def test_a_digest_or_a_fixed_tag_complies() -> None:
    assert_complies(IMAGE_PINNED, deployment())
    assert_complies(IMAGE_PINNED, deployment(hardened_container(image="nvcr.io/nvidia/k8s-device-plugin:v0.17.0")))


@pytest.mark.parametrize(
    "image", ["registry.example/server", "registry.example/server:latest", "localhost:5001/server"]
)
def test_latest_or_untagged_violates(image: str) -> None:
    assert_violates(IMAGE_PINNED, deployment(hardened_container(image=image)), containing="not pinned")


def test_cloud_registries_are_allowed_by_default() -> None:
    assert_complies(IMAGE_FROM_STACK_REGISTRIES, deployment())


def test_a_public_registry_violates() -> None:
    assert_violates(
        IMAGE_FROM_STACK_REGISTRIES,
        deployment(hardened_container(image="docker.io/library/nginx:1.27")),
        containing="not from the stack's registries",
    )


def test_the_stack_config_narrows_the_registries() -> None:
    config = {"allowedRegistries": ["registry.fra.example.internal/meridian/*"]}
    assert_violates(IMAGE_FROM_STACK_REGISTRIES, deployment(), containing=IMAGE, config=config)
    onprem = hardened_container(image="registry.fra.example.internal/meridian/server:v1")
    assert_complies(IMAGE_FROM_STACK_REGISTRIES, deployment(onprem), config=config)
