"""Services and the address a LoadBalancer Service gets from its cloud."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.k8s.awaiting import ADDRESS_ASSIGNED
from components.k8s.labels import metadata
from components.k8s.target import Target

# EKS: the in-tree controller provisions an NLB (layer 4, keeps client IPs with
# externalTrafficPolicy Local) instead of a classic ELB. GKE's default is already layer 4.
_LOAD_BALANCER_ANNOTATIONS: dict[Cloud, dict[str, str]] = {
    Cloud.AWS: {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
}


def service(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    ports: Mapping[str, int],
    *,
    public: bool,
    parent: pulumi.Resource,
    selector: Mapping[str, str] | None = None,
    gated_by_pipeline: bool = False,
) -> k8s.core.v1.Service:
    """A ClusterIP Service, or with `public` a LoadBalancer that keeps client source IPs.
    `gated_by_pipeline`: its pods wait for a model, so `pulumi up` waits only for the load
    balancer's address, not for ready endpoints (components/k8s/awaiting.py)."""
    annotations = {
        **(_LOAD_BALANCER_ANNOTATIONS.get(target.region.cloud, {}) if public else {}),
        **(ADDRESS_ASSIGNED if gated_by_pipeline and public else {}),
    }
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "service"), annotations),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="LoadBalancer" if public else "ClusterIP",
            external_traffic_policy="Local" if public else None,
            selector=dict(selector) if selector is not None else target.selector(app),
            ports=[
                k8s.core.v1.ServicePortArgs(name=port_name, port=port, target_port=port_name, protocol="TCP")
                for port_name, port in ports.items()
            ],
        ),
        opts=target.opts(parent),
    )


def load_balancer_address(svc: k8s.core.v1.Service) -> pulumi.Output[str]:
    """The host name (AWS) or IP (GCP, most on-prem load balancers) the cloud assigned."""

    def first_ingress(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
        ingress = status.load_balancer.ingress if status and status.load_balancer else None
        if not ingress:
            raise ValueError("the LoadBalancer Service has no ingress address in its status")
        address = ingress[0].hostname or ingress[0].ip
        if not address:
            raise ValueError("the LoadBalancer Service's ingress has neither hostname nor ip")
        return address

    return svc.status.apply(first_ingress)
