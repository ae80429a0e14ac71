"""What every workload of a region repeats: its identity, its Deployment, its network allowances.

Each is built the one house way: named after the workload's app, labelled and selected by
the Target's labels, in the region's namespace through its provider. The components
(SuperLink, SuperNode, RegionalInference, EdgeServers) state only what is theirs: containers,
volumes, replicas and who may talk to whom. Plain functions, not a component, so a workload's
objects stay direct children of the component that owns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import WorkloadIdentity
from components.k8s import network_policy as netpol
from components.k8s.labels import metadata
from components.k8s.target import Target


def service_account(
    resource_name: str, target: Target, app: str, identity: WorkloadIdentity, parent: pulumi.Resource
) -> k8s.core.v1.ServiceAccount:
    """The pod's identity, named after its app: the cloud role annotation, and no API token
    (none of ours calls the API). The cloud identities trust it by that name."""
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=metadata(app, target.namespace, target.labels(app, "identity"), identity.annotations),
        automount_service_account_token=False,
        opts=target.opts(parent),
    )


def deployment(
    resource_name: str,
    target: Target,
    app: str,
    pod: k8s.core.v1.PodSpecArgs,
    *,
    component: str,
    parent: pulumi.Resource,
    name: str | None = None,
    replicas: int | None = None,
    strategy: k8s.apps.v1.DeploymentStrategyArgs | None = None,
    pod_annotations: Mapping[str, str] | None = None,
    site_labels: Mapping[str, str] | None = None,
) -> k8s.apps.v1.Deployment:
    """A Deployment named `name` (default: the app) whose pods carry the app's labels plus
    `site_labels`, which also narrow its selector (several Deployments of one app)."""
    extra = dict(site_labels or {})
    labels = {**target.labels(app, component), **extra}
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=metadata(name or app, target.namespace, labels),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=replicas,
            strategy=strategy,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels={**target.selector(app), **extra}),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=labels, annotations=dict(pod_annotations) if pod_annotations else None
                ),
                spec=pod,
            ),
        ),
        opts=target.opts(parent),
    )


def allow_traffic(
    resource_name: str,
    target: Target,
    app: str,
    *,
    parent: pulumi.Resource,
    ingress: Sequence[netpol.Rule] = (),
    egress: Sequence[netpol.Rule] = (),
) -> k8s.networking.v1.NetworkPolicy:
    """The app's pods' exceptions to the namespace's default deny (DNS is always allowed)."""
    return netpol.allow(
        resource_name,
        app,
        target.namespace,
        target.selector(app),
        target.labels(app, "network"),
        ingress=ingress,
        egress=egress,
        opts=target.opts(parent),
    )


def secret(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    data: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    secret_type: str = "Opaque",
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "credentials")),
        type=secret_type,
        string_data=dict(data),
        opts=target.opts(parent),
    )


def config_map(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    data: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "config")),
        data=dict(data),
        opts=target.opts(parent),
    )
