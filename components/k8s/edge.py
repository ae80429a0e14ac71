"""Edge servers: one Deployment per edge site, on that site's CPU nodes.

An edge site's nodes are found by two labels: the standard zone label (an AWS Local Zone id,
a GCP zone, or the value an existing cluster's nodes carry: the site's `location`) and
EDGE_SITE_LABEL with the site's name, since a GCP edge pool shares its zone with the region's
other pools. Edge pools are tainted EDGE_SITE_LABEL=<site>:NoSchedule so nothing else lands
on them; the edge pods tolerate exactly their own site's taint.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import EDGE_SITE_LABEL, WorkloadIdentity
from components.config import EdgeSite
from components.k8s import network_policy as netpol
from components.k8s.inference import (
    EDGE_APP,
    SERVER_APP,
    disruption_budget,
    model_env,
    server_container,
    service_account,
    trusted_key_volume,
)
from components.k8s.labels import metadata
from components.k8s.monitoring import scrape_annotations
from components.k8s.security import Resources, pod_spec
from components.k8s.services import load_balancer_address, service
from components.k8s.target import Target
from workloads import contract

ZONE_LABEL = "topology.kubernetes.io/zone"
EDGE_RESOURCES = Resources("500m", "1Gi", "1", "2Gi")


def site_app(site: EdgeSite) -> str:
    return f"{EDGE_APP}-{site.name}"


class EdgeServers(pulumi.ComponentResource):
    """Every edge site of one region, escalating low-confidence requests to `upstream_url`."""

    endpoints: dict[str, pulumi.Output[str]]  # site name -> load balancer host name or IP

    def __init__(
        self,
        name: str,
        target: Target,
        image: pulumi.Input[str],
        registry_url: pulumi.Input[str],
        identity: WorkloadIdentity,
        trusted_key_config_map: pulumi.Input[str],
        upstream_url: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("meridian:k8s:EdgeServers", name, None, opts)
        self.endpoints = {}
        if not target.region.edge_sites:
            self.register_outputs({"endpoints": {}})
            return
        account = service_account(f"{name}-sa", EDGE_APP, target, EDGE_APP, identity, self)
        environment = {
            **model_env(target, registry_url, contract.EDGE_MODEL_VARIANT),
            contract.ENV_UPSTREAM_URL: upstream_url,
            contract.ENV_CONFIDENCE_THRESHOLD: f"{target.config.inference.edge_confidence_threshold:g}",
        }
        for site in target.region.edge_sites:
            app = site_app(site)
            # Pods of every site share the `edge` name label (the server's NetworkPolicy admits
            # them by it) and differ by the site label.
            pod_labels = {**target.labels(EDGE_APP, "edge"), EDGE_SITE_LABEL: site.name}
            selector = {**target.selector(EDGE_APP), EDGE_SITE_LABEL: site.name}
            k8s.apps.v1.Deployment(
                f"{name}-{site.name}-deployment",
                metadata=metadata(app, target.namespace, pod_labels),
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=site.capacity,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels, annotations=scrape_annotations()),
                        spec=pod_spec(
                            [server_container(EDGE_APP, image, EDGE_RESOURCES, environment)],
                            service_account=account.metadata.name,
                            volumes=[trusted_key_volume(trusted_key_config_map)],
                            node_selector={ZONE_LABEL: site.location, EDGE_SITE_LABEL: site.name},
                            tolerations=[
                                k8s.core.v1.TolerationArgs(
                                    key=EDGE_SITE_LABEL, operator="Equal", value=site.name, effect="NoSchedule"
                                )
                            ],
                        ),
                    ),
                ),
                opts=target.opts(self),
            )
            svc = service(
                f"{name}-{site.name}-service",
                app,
                target,
                EDGE_APP,
                {"http": contract.HTTP_PORT},
                public=True,
                parent=self,
                selector=selector,
            )
            disruption_budget(f"{name}-{site.name}-pdb", app, target, EDGE_APP, self, selector=selector)
            self.endpoints[site.name] = load_balancer_address(svc)
        netpol.allow(
            f"{name}-netpol",
            EDGE_APP,
            target.namespace,
            target.selector(EDGE_APP),
            target.labels(EDGE_APP, "network"),
            ingress=[netpol.Rule([netpol.anywhere()], [contract.HTTP_PORT])],
            egress=[
                netpol.Rule([netpol.pods(target.selector(SERVER_APP))], [contract.HTTP_PORT]),
                netpol.Rule([netpol.public_internet()], [netpol.HTTPS_PORT]),
                *netpol.cloud_identity_rules(target.region.cloud),
            ],
            opts=target.opts(self),
        )
        self.register_outputs({"endpoints": self.endpoints})
