"""A GCP region's front door: one GKE Gateway, a global external Application Load Balancer on
the region's reserved global IP, presenting its Certificate Manager map under a MODERN
(TLS 1.2+) SSL policy. HTTPS on 443 routes `<region>.<domain>` and `inference.<domain>` to the
server's Service and each `<site>.<region>.<domain>` to its edge site's; plain HTTP on 80
answers every request with a redirect to HTTPS and nothing else.

GKE's Gateway controller builds the load balancer from these objects (GKE docs "Deploying
Gateways", "Secure a Gateway", "Configure Gateway resources using Policies",
https://cloud.google.com/kubernetes-engine/docs/how-to/secure-gateway, read 2026-11-30):
- the Gateway: class `gke-l7-global-external-managed`, address NamedAddress (the reserved IP's
  name), annotation `networking.gke.io/certmap` (GKE refuses it together with listener
  `tls.certificateRefs`, so the HTTPS listener has no `tls`);
- HTTPRoutes bound to a listener by `sectionName` (a route without one would attach to the
  HTTP listener too, serving content in plain HTTP);
- a GCPGatewayPolicy naming the SSL policy, a HealthCheckPolicy per backend Service (else the
  load balancer probes `/`, which the servers do not answer as healthy).
The backends are ClusterIP Services: GKE makes zonal NEGs of them, so an edge site's traffic
reaches its own zone's pods. The cluster installs the Gateway API CRDs itself
(components/gcp/cluster.py: gatewayApiConfig CHANNEL_STANDARD). Schemas:
tests/components/k8s/gateway_api_crds.json and gke_gateway_crds.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.front_door import FrontDoor
from components.k8s.labels import metadata
from components.k8s.target import Target
from workloads import contract

GATEWAY_API = "gateway.networking.k8s.io/v1"
GKE_API = "networking.gke.io/v1"
GATEWAY_CLASS = "gke-l7-global-external-managed"
CERTIFICATE_MAP_ANNOTATION = "networking.gke.io/certmap"
GATEWAY_NAME = "front-door"  # one per region namespace; routes attach to it by name
HTTPS_LISTENER = "https"
HTTP_LISTENER = "http"
PLAIN_HTTP_PORT = 80  # redirects only
COMPONENT = "front-door"


def _required(
    front_door: FrontDoor, target: Target
) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
    """The certificate map, address name and SSL policy a GCP region's front door must carry."""
    certificate_map, address_name, ssl_policy = (
        front_door.gcp_certificate_map,
        front_door.gcp_address_name,
        front_door.gcp_ssl_policy,
    )
    if certificate_map is None or address_name is None or ssl_policy is None:
        raise ValueError(
            f"region {target.region.name}: a GCP front door needs gcp_certificate_map, gcp_address_name "
            "and gcp_ssl_policy"
        )
    return certificate_map, address_name, ssl_policy


def address(front_door: FrontDoor, target: Target) -> pulumi.Output[str]:
    """The reserved global IP every public name of a GCP region resolves to."""
    if front_door.gcp_address is None:
        raise ValueError(f"region {target.region.name}: a GCP front door needs gcp_address")
    return front_door.gcp_address


@dataclass(frozen=True, kw_only=True)
class FrontDoorGatewayArgs:
    target: Target
    front_door: FrontDoor


class FrontDoorGateway(pulumi.ComponentResource):
    """The region's Gateway, its HTTP-to-HTTPS redirect and its SSL policy; `route` binds a
    Service to it."""

    def __init__(self, name: str, args: FrontDoorGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:FrontDoorGateway", name, None, opts)
        target = args.target
        certificate_map, address_name, ssl_policy = _required(args.front_door, target)
        same_namespace = {"namespaces": {"from": "Same"}}
        gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=GATEWAY_API,
            kind="Gateway",
            metadata=metadata(
                GATEWAY_NAME,
                target.namespace,
                target.labels(GATEWAY_NAME, COMPONENT),
                {CERTIFICATE_MAP_ANNOTATION: certificate_map},
            ),
            spec={
                "gatewayClassName": GATEWAY_CLASS,
                "addresses": [{"type": "NamedAddress", "value": address_name}],
                "listeners": [
                    {
                        "name": HTTPS_LISTENER,
                        "protocol": "HTTPS",
                        "port": contract.PUBLIC_TLS_PORT,
                        "allowedRoutes": same_namespace,
                    },
                    {
                        "name": HTTP_LISTENER,
                        "protocol": "HTTP",
                        "port": PLAIN_HTTP_PORT,
                        "allowedRoutes": same_namespace,
                    },
                ],
            },
            opts=target.opts(self),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-redirect",
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            metadata=metadata(f"{GATEWAY_NAME}-redirect", target.namespace, target.labels(GATEWAY_NAME, COMPONENT)),
            spec={
                "parentRefs": [{"name": GATEWAY_NAME, "sectionName": HTTP_LISTENER}],
                "rules": [
                    {
                        "filters": [
                            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
                        ]
                    }
                ],
            },
            opts=target.opts(self, [gateway]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-policy",
            api_version=GKE_API,
            kind="GCPGatewayPolicy",
            metadata=metadata(GATEWAY_NAME, target.namespace, target.labels(GATEWAY_NAME, COMPONENT)),
            spec={
                "default": {"sslPolicy": ssl_policy},
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME},
            },
            opts=target.opts(self, [gateway]),
        )
        self.register_outputs({"gateway": GATEWAY_NAME})


def route(
    resource_name: str,
    target: Target,
    name: str,
    app: str,
    service: k8s.core.v1.Service,
    hosts: Sequence[str],
    *,
    parent: pulumi.Resource,
) -> None:
    """HTTPS requests for `hosts` to `service`'s http port, health-checked on the readiness
    path; the route and the health check are named `name`, like the Service."""
    backend = service.metadata.name
    labels = target.labels(app, COMPONENT)
    k8s.apiextensions.CustomResource(
        f"{resource_name}-route",
        api_version=GATEWAY_API,
        kind="HTTPRoute",
        metadata=metadata(name, target.namespace, labels),
        spec={
            "parentRefs": [{"name": GATEWAY_NAME, "sectionName": HTTPS_LISTENER}],
            "hostnames": list(hosts),
            "rules": [{"backendRefs": [{"name": backend, "port": contract.HTTP_PORT}]}],
        },
        opts=target.opts(parent),
    )
    k8s.apiextensions.CustomResource(
        f"{resource_name}-health-check",
        api_version=GKE_API,
        kind="HealthCheckPolicy",
        metadata=metadata(name, target.namespace, labels),
        spec={
            "default": {
                "config": {
                    "type": "HTTP",
                    "httpHealthCheck": {"port": contract.HTTP_PORT, "requestPath": contract.READINESS_PATH},
                }
            },
            "targetRef": {"group": "", "kind": "Service", "name": backend},
        },
        opts=target.opts(parent),
    )
