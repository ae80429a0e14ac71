"""Edge servers: one Deployment per edge site, on that site's CPU nodes, scaled by KEDA
(components/k8s/autoscaling.py) between the site's node count and its maxReplicas.

An edge site's nodes are found by two labels: the standard zone label (an AWS Local Zone id,
a GCP zone, or the value an existing cluster's nodes carry: the site's `location`) and
EDGE_SITE_LABEL with the site's name, since a GCP edge pool shares its zone with the region's
other pools. Edge pools are tainted EDGE_SITE_LABEL=<site>:NoSchedule so nothing else lands
on them; the edge pods tolerate exactly their own site's taint.

Their ports and who may reach each (NetworkPolicy): HTTP_PORT, public (every caller needs a
credential; HTTPS in the pod itself in a `kubernetes` region); ADMIN_PORT, from the region's
canary controller only (where one runs); METRICS_PORT, from the cluster's Prometheus only. Out:
the region's servers on their escalation port alone (mutual TLS, the site's client certificate:
components/k8s/front_door_tls.py), and the clouds' HTTPS APIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import EDGE_SITE_LABEL
from components.config import EdgeSite
from components.front_door import FrontDoor
from components.k8s import network_policy as netpol
from components.k8s.autoscaling import edge_policy, scaled_object
from components.k8s.exposure import expose
from components.k8s.front_door_tls import edge_tls, serves_https
from components.k8s.monitors import scraped
from components.k8s.pods import Resources
from components.k8s.serving import (
    EDGE_APP,
    SERVER_APP,
    ModelSource,
    PodAdditions,
    admin_ingress,
    disruption_budget,
    server_pod,
)
from components.k8s.target import Target
from components.k8s.trust import FederationTrust
from components.k8s.workload import Workload
from workloads import contract

ZONE_LABEL = "topology.kubernetes.io/zone"
EDGE_RESOURCES = Resources("500m", "1Gi", "1", "2Gi")


def site_app(site: EdgeSite) -> str:
    return f"{EDGE_APP}-{site.name}"


@dataclass(frozen=True, kw_only=True)
class EdgeServersArgs:
    target: Target
    image: pulumi.Input[str]  # the edge image
    models: ModelSource
    upstream_url: str  # the region's servers' escalation port, where unsure requests go (mutual TLS)
    callers: PodAdditions  # the callers' credentials and limits (components/k8s/callers.py)
    trust: FederationTrust  # the stack's CA: each site's client certificate, in a `kubernetes` region its public one
    front_door: FrontDoor  # each site's public name (edge_hosts) and the region's TLS material
    autoscaler: Sequence[pulumi.Resource] = ()  # what the ScaledObjects wait for: KEDA's release


class EdgeServers(pulumi.ComponentResource):
    """Every edge site of one region, escalating low-confidence requests to its upstream."""

    endpoints: dict[str, pulumi.Output[str]]  # site name -> what its public name resolves to

    def __init__(self, name: str, args: EdgeServersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:EdgeServers", name, None, opts)
        target = args.target
        self.endpoints = {}
        if not target.region.edge_sites:
            self.register_outputs({"endpoints": {}})
            return
        workload = Workload(target, EDGE_APP, self)
        account = workload.service_account(f"{name}-sa", args.models.identity)
        escalation = {
            contract.ENV_UPSTREAM_URL: args.upstream_url,
            contract.ENV_CONFIDENCE_THRESHOLD: f"{target.config.inference.edge_confidence_threshold:g}",
        }
        for site in target.region.edge_sites:
            app = site_app(site)
            # Pods of every site share the `edge` name label (the server's NetworkPolicy admits
            # them by it) and differ by the site label.
            site_label = {EDGE_SITE_LABEL: site.name}
            selector = {**target.selector(EDGE_APP), **site_label}
            address = expose(
                f"{name}-{site.name}-service",
                app,
                target,
                EDGE_APP,
                args.front_door,
                [args.front_door.edge_hosts[site.name]],
                parent=self,
                selector=selector,
            )
            public_hosts = [args.front_door.edge_hosts[site.name], address] if serves_https(target.region) else None
            tls = edge_tls(workload, args.trust, f"{name}-{site.name}", app, public_hosts)
            deployment = workload.deployment(
                f"{name}-{site.name}-deployment",
                server_pod(
                    workload,
                    args.image,
                    EDGE_RESOURCES,
                    models=args.models,
                    variant=contract.EDGE_MODEL_VARIANT,
                    additions=args.callers + tls + PodAdditions(escalation),
                    service_account=account.metadata.name,
                    node_selector={ZONE_LABEL: site.location, EDGE_SITE_LABEL: site.name},
                    tolerations=[
                        k8s.core.v1.TolerationArgs(
                            key=EDGE_SITE_LABEL, operator="Equal", value=site.name, effect="NoSchedule"
                        )
                    ],
                ),
                component="edge",
                name=app,  # no replicas: its ScaledObject owns the count
                site_labels=site_label,
                gated_by_pipeline=True,  # ready once the region's first int8 model is published
            )
            scaled_object(
                f"{name}-{site.name}-scaling",
                target,
                EDGE_APP,
                app,
                deployment,
                edge_policy(target, site),
                parent=self,
                depends_on=list(args.autoscaler),
            )
            disruption_budget(f"{name}-{site.name}-pdb", workload, app, selector=selector)
            self.endpoints[site.name] = address
        workload.allow_traffic(
            f"{name}-netpol",
            ingress=[
                netpol.Rule([netpol.anywhere()], [contract.HTTP_PORT]),
                *admin_ingress(target, args.models),
                scraped(),
            ],
            egress=[
                netpol.Rule([netpol.pods(target.selector(SERVER_APP))], [contract.ESCALATION_PORT]),
                *netpol.cloud_apis(target.region.cloud),
                *netpol.oidc_issuer(target.config.auth),
            ],
        )
        self.register_outputs({"endpoints": self.endpoints})
