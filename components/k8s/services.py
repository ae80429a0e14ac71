"""Services, the address a LoadBalancer Service gets from its cloud, and the HTTPS load
balancer in front of a region's servers and edge sites on AWS and `kubernetes` regions.

Every public listener is TLS: the front door's only port is PUBLIC_TLS_PORT (443), terminated
by the NLB with the region's ACM certificate (AWS) or by the pods themselves with the stack
CA's certificate (`kubernetes` regions); no plain-HTTP listener exists (port 80 is closed).
The federation's LoadBalancers (SuperLink, metrics receiver) pass TLS through to pods that
terminate it. Both say so in TLS_TERMINATION, which the policy pack reads
(policy/rules/kubernetes/exposure.py). GCP regions are reached through a GKE Gateway instead
(components/k8s/gateway.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.front_door import FrontDoor
from components.k8s.awaiting import ADDRESS_ASSIGNED, CLUSTER_IP_ASSIGNED
from components.k8s.labels import metadata
from components.k8s.target import Target
from workloads import contract

# EKS: the in-tree controller provisions an NLB (layer 4, keeps client IPs with
# externalTrafficPolicy Local) instead of a classic ELB. GKE's default is already layer 4.
_LOAD_BALANCER_ANNOTATIONS: dict[Cloud, dict[str, str]] = {
    Cloud.AWS: {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
}

# Where a public LoadBalancer's TLS ends when the cloud's load balancer does not terminate it:
# "pod" (the pods serve TLS on every port the Service exposes). The policy pack accepts a
# public LoadBalancer without a cloud certificate only with this annotation.
TLS_TERMINATION = "meridian.dev/tls-termination"
POD_TLS = {TLS_TERMINATION: "pod"}

# AWS: the NLB's TLS listener on 443 presents the region's ACM certificate under a TLS 1.2+
# policy (1.3 preferred) and forwards plain TCP to the pods' http port inside the VPC.
# Annotations of the AWS cloud provider (kubernetes/cloud-provider-aws
# pkg/providers/v1/aws.go, `ensureLoadBalancerv2` port mappings: ssl-cert on the ports
# ssl-ports names, ssl-negotiation-policy as the listener's SslPolicy, backend-protocol "ssl"
# alone would re-encrypt to the pod) and of the AWS Load Balancer Controller, which reads the
# same names (https://kubernetes-sigs.github.io/aws-load-balancer-controller/v2.1/guide/service/annotations/,
# read 2026-11-30).
AWS_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
AWS_SSL_CERT = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
AWS_SSL_PORTS = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"
AWS_SSL_NEGOTIATION_POLICY = "service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy"
AWS_BACKEND_PROTOCOL = "service.beta.kubernetes.io/aws-load-balancer-backend-protocol"


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
    """A ClusterIP Service, or with `public` a LoadBalancer that passes TLS through to pods
    that terminate it themselves (POD_TLS) and keeps client source IPs. `ports`: container
    port name -> the same port on the Service. `gated_by_pipeline`: its pods wait for a
    model, so `pulumi up` waits only for the load balancer's address (or cluster IP), not for
    ready endpoints (components/k8s/awaiting.py)."""
    return _service(
        resource_name,
        name,
        target,
        app,
        [k8s.core.v1.ServicePortArgs(name=n, port=p, target_port=n, protocol="TCP") for n, p in ports.items()],
        load_balancer=POD_TLS if public else None,
        parent=parent,
        selector=selector,
        gated_by_pipeline=gated_by_pipeline,
    )


def https_service(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    front_door: FrontDoor,
    *,
    parent: pulumi.Resource,
    selector: Mapping[str, str] | None = None,
    gated_by_pipeline: bool = False,
) -> k8s.core.v1.Service:
    """A server's or edge site's public LoadBalancer on AWS or a `kubernetes` region: one
    listener, PUBLIC_TLS_PORT, onto the pods' http port. AWS terminates TLS at the NLB with the
    front door's ACM certificate; a `kubernetes` region's pods serve HTTPS there themselves."""
    cloud = target.region.cloud
    if cloud is Cloud.GCP:
        raise ValueError(f"region {target.region.name}: GCP regions are exposed by their Gateway, not a LoadBalancer")
    if cloud is Cloud.AWS:
        if front_door.acm_certificate_arn is None:
            raise ValueError(f"region {target.region.name}: its front door has no ACM certificate for the NLB")
        tls: dict[str, pulumi.Input[str]] = {
            AWS_SSL_CERT: front_door.acm_certificate_arn,
            AWS_SSL_PORTS: str(contract.PUBLIC_TLS_PORT),
            AWS_SSL_NEGOTIATION_POLICY: AWS_TLS_POLICY,
            AWS_BACKEND_PROTOCOL: "tcp",
        }
    else:
        tls = dict(POD_TLS)
    return _service(
        resource_name,
        name,
        target,
        app,
        [k8s.core.v1.ServicePortArgs(name="https", port=contract.PUBLIC_TLS_PORT, target_port="http", protocol="TCP")],
        load_balancer=tls,
        parent=parent,
        selector=selector,
        gated_by_pipeline=gated_by_pipeline,
    )


def _service(
    resource_name: str,
    name: str,
    target: Target,
    app: str,
    ports: list[k8s.core.v1.ServicePortArgs],
    *,
    load_balancer: Mapping[str, pulumi.Input[str]] | None,  # None: ClusterIP; else its TLS annotations
    parent: pulumi.Resource,
    selector: Mapping[str, str] | None,
    gated_by_pipeline: bool,
) -> k8s.core.v1.Service:
    public = load_balancer is not None
    annotations: dict[str, pulumi.Input[str]] = {
        **(_LOAD_BALANCER_ANNOTATIONS.get(target.region.cloud, {}) if public else {}),
        **(load_balancer or {}),
        **((ADDRESS_ASSIGNED if public else CLUSTER_IP_ASSIGNED) if gated_by_pipeline else {}),
    }
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, target.namespace, target.labels(app, "service"), annotations),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="LoadBalancer" if public else "ClusterIP",
            external_traffic_policy="Local" if public else None,
            selector=dict(selector) if selector is not None else target.selector(app),
            ports=ports,
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
