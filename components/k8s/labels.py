"""Labels and object metadata shared by every Kubernetes object Meridian creates."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

PART_OF = "meridian"
REGION_LABEL = "meridian.io/region"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"


def selector(app: str, region: str) -> dict[str, str]:
    """The immutable pod selector of a workload: as small as possible, never stack labels."""
    return {NAME_LABEL: app, REGION_LABEL: region}


def labels(app: str, region: str, component: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        **extra,
        **selector(app, region),
        COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def metadata(
    name: str,
    namespace: pulumi.Input[str] | None,
    object_labels: Mapping[str, str],
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> k8s.meta.v1.ObjectMetaArgs:
    """Explicit names (no random suffix): Services and Secrets are referenced by name."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=dict(object_labels),
        annotations=dict(annotations) if annotations else None,
    )
