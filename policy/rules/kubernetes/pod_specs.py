"""Where each workload kind keeps its pod spec, and the containers in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..props import dig, items, mapping

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_TYPES = frozenset(_POD_SPEC_PATHS)
LONG_RUNNING_TYPES = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:ReplicaSet",
    }
)


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    path = _POD_SPEC_PATHS.get(resource_type)
    return mapping(dig(props, *path)) if path else {}


def containers(spec: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    """The pod's containers (and init containers, unless `init=False`)."""
    found = [mapping(c) for c in items(spec.get("containers"))]
    return found + init_containers(spec) if init else found


def init_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [mapping(c) for c in items(spec.get("initContainers"))]


def container_name(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "<unnamed>")
