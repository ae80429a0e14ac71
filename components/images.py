"""The workload images, built from `workloads/<image>/Dockerfile` and pushed on `pulumi up`.

One `WorkloadImages` per registry (ECR per AWS region, Artifact Registry per GCP region, the
configured registry of an existing cluster). The Deployments reference `refs`, which are
pinned by digest, so a change in `workloads/` rolls out exactly the code that was built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from workloads.contract import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_CACHE_TAG = "buildcache"  # a mutable tag: registries with immutable tags must exempt it


def dockerfile_path(image: Image) -> Path:
    return REPO_ROOT / "workloads" / image.value / "Dockerfile"


def _from_program_dir(path: Path) -> str:
    """Relative to where Pulumi runs the program (the project root), so the inputs do not
    change with the checkout's location (offline diffs compare two checkouts)."""
    return os.path.relpath(path, Path.cwd())


@dataclass(frozen=True)
class WorkloadImagesArgs:
    registry: pulumi.Input[str]  # repository prefix, e.g. 123.dkr.ecr.us-east-1.amazonaws.com/meridian-dev
    registry_auth: docker_build.RegistryArgs | None
    tag: str  # human-readable tag pushed beside the digest, e.g. the git commit
    # Where the mutable build-cache tag goes when `registry` refuses to overwrite tags
    # (Artifact Registry cannot exempt one tag from immutability); default: `registry`.
    cache_registry: pulumi.Input[str] | None = None


class WorkloadImages(pulumi.ComponentResource):
    """Builds and pushes every `workloads.contract.Image` to one registry.

    `refs[image]` is `<registry>/<image>:<tag>@sha256:<digest>`: the `ref` output of the
    docker-build Image, which always carries the pushed digest, so pods never run a tag.
    """

    refs: dict[Image, pulumi.Output[str]]

    def __init__(self, name: str, args: WorkloadImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:images:WorkloadImages", name, None, opts)
        if not args.tag or any(c in args.tag for c in ":@/ "):
            raise ValueError(f"image tag {args.tag!r} is empty or contains ':', '@', '/' or a space")
        context = _from_program_dir(REPO_ROOT)
        self.refs = {}
        for image in Image:
            repository = pulumi.Output.concat(args.registry, "/", image.value)
            cache_repository = pulumi.Output.concat(
                args.cache_registry if args.cache_registry is not None else args.registry, "/", image.value
            )
            cache = pulumi.Output.concat(cache_repository, ":", BUILD_CACHE_TAG)
            built = docker_build.Image(
                f"{name}-{image.value}",
                context=docker_build.BuildContextArgs(location=context),
                dockerfile=docker_build.DockerfileArgs(location=_from_program_dir(dockerfile_path(image))),
                platforms=[docker_build.Platform.LINUX_AMD64],
                push=True,
                tags=[pulumi.Output.concat(repository, ":", args.tag)],
                registries=[args.registry_auth] if args.registry_auth is not None else None,
                # A registry cache (not a local one) so CI runners without state still reuse
                # layers; image-manifest + OCI media types are what ECR and Artifact Registry
                # accept for cache manifests.
                cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache))],
                cache_to=[
                    docker_build.CacheToArgs(
                        registry=docker_build.CacheToRegistryArgs(
                            ref=cache,
                            mode=docker_build.CacheMode.MAX,
                            image_manifest=True,
                            oci_media_types=True,
                        )
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.refs[image] = built.ref
        self.register_outputs({"refs": {image.value: ref for image, ref in self.refs.items()}})
