"""A region's namespace, enforcing the Pod Security `restricted` standard."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import metadata

POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_MODES = ("enforce", "audit", "warn")


def namespace_name(region: str) -> str:
    """One namespace per region, so regions can share a cluster (the `local` stack does)."""
    return f"meridian-{region}"


def pod_security_labels(level: str, version: str) -> dict[str, str]:
    """`version` pins the standard to the cluster's minor release, so an upgrade of the
    cluster cannot silently change what is admitted."""
    out: dict[str, str] = {}
    for mode in POD_SECURITY_MODES:
        out[f"pod-security.kubernetes.io/{mode}"] = level
        out[f"pod-security.kubernetes.io/{mode}-version"] = f"v{version}"
    return out


def restricted_namespace(
    resource_name: str,
    region: str,
    kubernetes_version: str,
    extra_labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Namespace:
    labels = {**extra_labels, **pod_security_labels(POD_SECURITY_LEVEL, kubernetes_version)}
    return k8s.core.v1.Namespace(resource_name, metadata=metadata(namespace_name(region), None, labels), opts=opts)
