"""Which of a stack's regions share a cluster, for what is installed once per cluster.

Every cloud region has a cluster of its own; regions of `cloud: kubernetes` may share one, told
apart by kubeconfig context and file. The first region on a cluster (in stack order) installs
its cluster-wide add-ons (GPU device plugin, KEDA, the monitoring stack); the others reuse them.
"""

from __future__ import annotations

from components.config import Region, StackConfig


def cluster_key(region: Region) -> tuple[str, str | None] | None:
    """The existing cluster a region is on (regions may share one); None: a cloud cluster of its own."""
    if region.kubernetes is None:
        return None
    return region.kubernetes.context, region.kubernetes.kubeconfig_path


def cluster_regions(config: StackConfig, region: Region) -> list[Region]:
    """The stack's regions on `region`'s cluster, in stack order (a cloud region: itself)."""
    key = cluster_key(region)
    if key is None:
        return [region]
    return [r for r in config.regions if cluster_key(r) == key]


def owns_cluster(config: StackConfig, region: Region) -> bool:
    """Whether `region` installs its cluster's add-ons: it is the first region on its cluster."""
    return cluster_regions(config, region)[0].name == region.name
