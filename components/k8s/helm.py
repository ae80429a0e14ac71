"""The cluster add-ons Meridian installs from Helm charts, each at a pinned version.

`helm.v3.Release` rather than `helm.v4.Chart`: Helm installs atomically and rolls a failed
install or upgrade back, and the offline engine records one resource with its pinned inputs
(components/aws/karpenter.py says more; its OCI charts are installed there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class PinnedChart:
    release: str  # the Helm release's name in its namespace
    chart: str
    version: str
    repo: str


def release(
    resource_name: str,
    chart: PinnedChart,
    *,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        resource_name,
        name=chart.release,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=namespace,
        atomic=True,
        values=dict(values),
        opts=opts,
    )
