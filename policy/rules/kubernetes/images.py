"""Images: pinned by digest or an explicit non-`latest` tag, and pulled only from the stack's registries."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, Severity

from ..config_schema import string_list
from ..decorators import MANDATORY, resource_rule
from ..props import items
from .pod_specs import WORKLOAD_TYPES, container_name, containers, pod_spec

# Without a stack's own list: the clouds' private registries (ECR, Artifact Registry).
DEFAULT_REGISTRIES = ["*.dkr.ecr.*.amazonaws.com/*", "*-docker.pkg.dev/*"]
REGISTRIES_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedRegistries": string_list(
            DEFAULT_REGISTRIES,
            "glob patterns an image reference must match, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/*`",
        )
    }
)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`repo[:tag][@digest]` -> (repository, tag, digest)."""
    repository, _, digest = image.partition("@")
    name_start = repository.rfind("/") + 1
    tag = None
    if ":" in repository[name_start:]:
        repository, _, tag = repository.rpartition(":")
    return repository, tag, digest or None


@resource_rule("k8s-image-pinned", Severity.HIGH, MANDATORY, types=WORKLOAD_TYPES)
def IMAGE_PINNED(args: ResourceValidationArgs) -> Iterator[str]:
    """Container images are pinned by digest or a fixed tag, never `latest` or untagged."""
    for container in containers(pod_spec(args.resource_type, args.props)):
        image = str(container.get("image") or "")
        _, tag, digest = split_image(image)
        if digest:
            if not digest.startswith("sha256:"):
                yield f"container {container_name(container)}: digest {digest!r} is not sha256"
        elif tag is None or tag == "latest":
            yield f"container {container_name(container)}: image {image!r} is not pinned (digest or a fixed tag)"


@resource_rule(
    "k8s-image-from-stack-registries", Severity.HIGH, MANDATORY, types=WORKLOAD_TYPES, config_schema=REGISTRIES_SCHEMA
)
def IMAGE_FROM_STACK_REGISTRIES(args: ResourceValidationArgs) -> Iterator[str]:
    """Container images come only from the stack's own registries."""
    allowed = [str(p) for p in items(args.get_config().get("allowedRegistries"))]
    for container in containers(pod_spec(args.resource_type, args.props)):
        image = str(container.get("image") or "")
        if not any(fnmatchcase(image, pattern) for pattern in allowed):
            yield (
                f"container {container_name(container)}: image {image!r} is not from the stack's "
                f"registries ({', '.join(allowed) or 'none configured'})"
            )


POLICIES = [IMAGE_PINNED, IMAGE_FROM_STACK_REGISTRIES]
