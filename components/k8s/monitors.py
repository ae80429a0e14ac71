"""What a cluster's Prometheus scrapes in one region, and who else may: a PodMonitor per
workload, each setting the contract's target labels (`region`, `app`; edges also `site`) by
relabeling, and the NetworkPolicy peer that admits the scrapes.

PodMonitors (not ServiceMonitors): the metrics port is on no Service, public or not, so nothing
but the monitors and the NetworkPolicies names it. They scrape `portNumber` (the contract's
port), so a workload owned elsewhere (the canary controller) needs no agreed port name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import EDGE_SITE_LABEL
from components.k8s import network_policy as netpol
from components.k8s.flower import SUPERLINK_APP, SUPERNODE_APP
from components.k8s.labels import metadata
from components.k8s.monitoring import (
    MONITORING_API,
    MONITORING_NAMESPACE,
    PROMETHEUS_POD_LABELS,
    SCRAPE_INTERVAL,
    target_relabelings,
)
from components.k8s.serving import EDGE_APP, SERVER_APP
from components.k8s.target import Target
from workloads import contract
from workloads.contract import MetricsApp


def scrapers() -> netpol.NetworkPolicyPeer:
    """The cluster's Prometheus pods, and nothing else: not the internet, not other pods."""
    return netpol.NetworkPolicyPeer(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROMETHEUS_POD_LABELS),
    )


def scraped(port: int = contract.METRICS_PORT) -> netpol.Rule:
    """The ingress rule a scraped workload adds to its NetworkPolicy."""
    return netpol.Rule([scrapers()], [port])


def pod_label(label: str) -> str:
    """The discovery meta label of a pod label (Prometheus turns every other character into `_`)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


@dataclass(frozen=True)
class Scraped:
    """One workload's metrics: the pods of `app`, scraped on `port`."""

    app: str  # the pods' name label
    metrics_app: MetricsApp
    port: int = contract.METRICS_PORT
    # The ServerApp labels its federated series with the participant's `region`: they win.
    honor_labels: bool = False
    site: bool = False  # edges: the pod's edge-site label becomes `site`

    def endpoint(self, region: str) -> dict[str, Any]:
        relabelings = target_relabelings(region, self.metrics_app)
        if self.site:
            relabelings.append(
                {"action": "replace", "sourceLabels": [pod_label(EDGE_SITE_LABEL)], "targetLabel": "site"}
            )
        return {
            "portNumber": self.port,
            "path": contract.METRICS_PATH,
            "interval": SCRAPE_INTERVAL,
            "honorLabels": self.honor_labels,
            "relabelings": relabelings,
        }


def scraped_workloads(home: bool, edges: bool) -> list[Scraped]:
    """What a region runs that serves metrics: the home also runs the SuperLink."""
    return [
        Scraped(SERVER_APP, MetricsApp.SERVER),
        *([Scraped(EDGE_APP, MetricsApp.EDGE, site=True)] if edges else []),
        *(
            [Scraped(SUPERLINK_APP, MetricsApp.SUPERLINK, contract.TRAINER_METRICS_PORT, honor_labels=True)]
            if home
            else []
        ),
        Scraped(SUPERNODE_APP, MetricsApp.SUPERNODE),
        Scraped(MetricsApp.CANARY.value, MetricsApp.CANARY),
    ]


@dataclass(frozen=True, kw_only=True)
class RegionMonitorsArgs:
    target: Target
    home: bool  # runs the SuperLink
    # The cluster's MonitoringStack release where this region installs it: the CRDs come with it.
    after: Sequence[pulumi.Resource] = ()


class RegionMonitors(pulumi.ComponentResource):
    """A PodMonitor per workload of one region, in the region's namespace."""

    def __init__(self, name: str, args: RegionMonitorsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:RegionMonitors", name, None, opts)
        target = args.target
        for scraped_app in scraped_workloads(args.home, bool(target.region.edge_sites)):
            k8s.apiextensions.CustomResource(
                f"{name}-{scraped_app.app}",
                api_version=MONITORING_API,
                kind="PodMonitor",
                metadata=metadata(scraped_app.app, target.namespace, target.labels(scraped_app.app, "monitoring")),
                spec={
                    "selector": {"matchLabels": target.selector(scraped_app.app)},
                    "podMetricsEndpoints": [scraped_app.endpoint(target.region.name)],
                },
                opts=target.opts(self, args.after),
            )
        self.register_outputs({})
