"""What every workload of a region repeats: its identity, its Deployment, its network
allowances, its Secrets and ConfigMaps.

A `Workload` is one app of a region and the component that owns its objects; each builder
names, labels and places an object the one house way through it, so the components
(SuperLink, SuperNode, RegionalInference, EdgeServers, the run's Jobs) state only what is
theirs: containers, volumes, replicas and who may talk to whom. A plain object, not a
component: a workload's objects stay direct children of the component that owns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.awaiting import ROLLOUT_STARTED
from components.k8s.labels import metadata
from components.k8s.target import Target


@dataclass(frozen=True)
class Workload:
    target: Target
    app: str  # the pods' name label, and the name of the objects that are the app's own
    parent: pulumi.Resource  # the component whose children the objects are

    def _opts(self) -> pulumi.ResourceOptions:
        return self.target.opts(self.parent)

    def _metadata(
        self, name: str, component: str, annotations: Mapping[str, pulumi.Input[str]] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return metadata(name, self.target.namespace, self.target.labels(self.app, component), annotations)

    def service_account(self, resource_name: str, identity: WorkloadIdentity) -> k8s.core.v1.ServiceAccount:
        """The pods' identity, named after the app (the cloud identities trust it by that
        name): the cloud role annotation, and no API token (none of ours calls the API)."""
        return k8s.core.v1.ServiceAccount(
            resource_name,
            metadata=self._metadata(self.app, "identity", identity.annotations),
            automount_service_account_token=False,
            opts=self._opts(),
        )

    def deployment(
        self,
        resource_name: str,
        pod: k8s.core.v1.PodSpecArgs,
        *,
        component: str,
        name: str | None = None,
        replicas: int | None = None,
        strategy: k8s.apps.v1.DeploymentStrategyArgs | None = None,
        site_labels: Mapping[str, str] | None = None,
        gated_by_pipeline: bool = False,
    ) -> k8s.apps.v1.Deployment:
        """A Deployment named `name` (default: the app) whose pods carry the app's labels plus
        `site_labels`, which also narrow its selector (several Deployments of one app).
        `gated_by_pipeline`: its pods wait for data or a model, so `pulumi up` waits only for the
        rollout to start (components/k8s/awaiting.py)."""
        extra = dict(site_labels or {})
        labels = {**self.target.labels(self.app, component), **extra}
        return k8s.apps.v1.Deployment(
            resource_name,
            metadata=metadata(
                name or self.app, self.target.namespace, labels, ROLLOUT_STARTED if gated_by_pipeline else None
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=replicas,
                strategy=strategy,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels={**self.target.selector(self.app), **extra}),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=pod,
                ),
            ),
            opts=self._opts(),
        )

    def allow_traffic(
        self, resource_name: str, *, ingress: Sequence[netpol.Rule] = (), egress: Sequence[netpol.Rule] = ()
    ) -> k8s.networking.v1.NetworkPolicy:
        """The app's pods' exceptions to the namespace's default deny (DNS is always allowed)."""
        return netpol.allow(
            resource_name,
            self.app,
            self.target.namespace,
            self.target.selector(self.app),
            self.target.labels(self.app, "network"),
            ingress=ingress,
            egress=egress,
            opts=self._opts(),
        )

    def secret(
        self, resource_name: str, name: str, data: Mapping[str, pulumi.Input[str]], secret_type: str = "Opaque"
    ) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            resource_name,
            metadata=self._metadata(name, "credentials"),
            type=secret_type,
            string_data=dict(data),
            opts=self._opts(),
        )

    def config_map(self, resource_name: str, name: str, data: Mapping[str, pulumi.Input[str]]) -> k8s.core.v1.ConfigMap:
        return k8s.core.v1.ConfigMap(
            resource_name, metadata=self._metadata(name, "config"), data=dict(data), opts=self._opts()
        )
