"""Where a region's workloads go: its cluster (provider), namespace, labels and config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import Region, StackConfig
from components.k8s import labels as meta


@dataclass(frozen=True)
class Target:
    config: StackConfig
    region: Region
    namespace: pulumi.Output[str]  # the Namespace's name output: objects in it wait for it
    namespace_name: str
    provider: k8s.Provider
    stack_labels: dict[str, str]

    def labels(self, app: str, component: str) -> dict[str, str]:
        return meta.labels(app, self.region.name, component, self.stack_labels)

    def selector(self, app: str) -> dict[str, str]:
        return meta.selector(app, self.region.name)

    def service_host(self, service: str) -> str:
        return f"{service}.{self.namespace_name}.svc.cluster.local"

    def opts(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        """Every Kubernetes object goes through this: the region's explicit provider, never
        the ambient kubeconfig."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=list(depends_on) or None)
