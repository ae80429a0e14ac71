"""Public exposure: every public listener of a Kubernetes LoadBalancer Service or Gateway is
HTTPS (plain HTTP only redirects to it), and TLS is terminated with a certificate someone
manages: an ACM certificate at an AWS load balancer, a Certificate Manager map or listener
certificates at a Gateway, or the pods themselves, as the Service declares.

A LoadBalancer Service is public unless a cloud annotation makes it internal. Its listeners
are TLS when the AWS cloud provider terminates them (`aws-load-balancer-ssl-cert` on the ports
`aws-load-balancer-ssl-ports` names, all of them when it names none: kubernetes/cloud-provider-aws
pkg/providers/v1/aws.go) or when POD_TLS_ANNOTATION says the pods do. A Gateway listener
serves HTTPS, or HTTP whose every attached HTTPRoute only redirects to https.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ..decorators import MANDATORY, resource_rule, stack_rule
from ..props import dig, items, mapping, show
from ..stack import of_types
from .metadata import cluster_of, name_of, namespace_of

SERVICE = "kubernetes:core/v1:Service"
GATEWAYS = ("kubernetes:gateway.networking.k8s.io/v1:Gateway", "kubernetes:gateway.networking.k8s.io/v1beta1:Gateway")
HTTP_ROUTES = (
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    "kubernetes:gateway.networking.k8s.io/v1beta1:HTTPRoute",
)
HTTPS_PORT = 443
# Meridian's own annotation (components/k8s/services.py TLS_TERMINATION; a test keeps the two
# equal): "pod" says the Service's pods serve TLS on every port it exposes.
POD_TLS_ANNOTATION = "meridian.dev/tls-termination"
AWS_SSL_CERT = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
AWS_SSL_PORTS = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"
GKE_CERTIFICATE_MAP = "networking.gke.io/certmap"
# Annotations that keep a LoadBalancer off the internet (AWS cloud provider / LB controller, GKE).
INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "internal",
    "cloud.google.com/load-balancer-type": "internal",
}


def _annotations(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "metadata", "annotations"))


def _public_load_balancer(props: Mapping[str, Any]) -> bool:
    if dig(props, "spec", "type") != "LoadBalancer":
        return False
    annotations = _annotations(props)
    return not any(str(annotations.get(key, "")).lower() == value for key, value in INTERNAL.items())


def _public_gateway(props: Mapping[str, Any]) -> bool:
    """GKE's internal classes say so in their names (gke-l7-rilb, *-internal-managed)."""
    gateway_class = str(dig(props, "spec", "gatewayClassName") or "")
    return "internal" not in gateway_class and "rilb" not in gateway_class


def _pod_tls(props: Mapping[str, Any]) -> bool:
    return _annotations(props).get(POD_TLS_ANNOTATION) == "pod"


def _cloud_tls(props: Mapping[str, Any], port: Mapping[str, Any]) -> bool:
    """Whether the AWS cloud provider terminates TLS on `port` with a certificate."""
    annotations = _annotations(props)
    if not annotations.get(AWS_SSL_CERT):
        return False
    named = [p.strip() for p in str(annotations.get(AWS_SSL_PORTS, "")).split(",") if p.strip()]
    return not named or show(port.get("port")) in named or port.get("name") in named


def _service_label(resource: PolicyResource) -> str:
    return f"Service {namespace_of(resource.props)}/{name_of(resource.props, resource.name)}"


def _attached(route: PolicyResource, gateway: PolicyResource, listener: str) -> bool:
    """Whether `route` binds to `listener` of `gateway` (a parentRef without a sectionName binds all)."""
    if cluster_of(route) != cluster_of(gateway):
        return False
    for parent in items(dig(route.props, "spec", "parentRefs")):
        parent = mapping(parent)
        if (
            parent.get("name") == name_of(gateway.props, gateway.name)
            and parent.get("kind", "Gateway") == "Gateway"
            and (parent.get("namespace") or namespace_of(route.props)) == namespace_of(gateway.props)
            and parent.get("sectionName") in (None, listener)
        ):
            return True
    return False


def _redirects_to_https_only(route: PolicyResource) -> bool:
    rules = [mapping(rule) for rule in items(dig(route.props, "spec", "rules"))]
    return bool(rules) and all(
        not items(rule.get("backendRefs"))
        and any(
            mapping(f).get("type") == "RequestRedirect" and dig(f, "requestRedirect", "scheme") == "https"
            for f in items(rule.get("filters"))
        )
        for rule in rules
    )


@stack_rule("public-listener-https-only", Severity.HIGH, MANDATORY)
def HTTPS_ONLY(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Public listeners are HTTPS only: Services on 443 with TLS (or TLS in the pods); Gateway HTTP only redirects."""
    for svc in of_types(args, SERVICE):
        # Pods that terminate TLS serve it on every port (the federation's gRPC listeners too).
        if not _public_load_balancer(svc.props) or _pod_tls(svc.props):
            continue
        for port in items(dig(svc.props, "spec", "ports")):
            port = mapping(port)
            number = show(port.get("port"))
            if number != str(HTTPS_PORT):
                yield (
                    (
                        f"{_service_label(svc)}: public port {number} is not HTTPS on {HTTPS_PORT}: close it, "
                        f"or say the pods terminate TLS ({POD_TLS_ANNOTATION}: pod)"
                    ),
                    svc.urn,
                )
            elif not _cloud_tls(svc.props, port):
                yield (
                    (
                        f"{_service_label(svc)}: public port {number} has no TLS: terminate it at the load balancer "
                        f"({AWS_SSL_CERT} covering the port) or in the pods ({POD_TLS_ANNOTATION}: pod)"
                    ),
                    svc.urn,
                )
    routes = of_types(args, *HTTP_ROUTES)
    for gateway in of_types(args, *GATEWAYS):
        if not _public_gateway(gateway.props):
            continue
        label = f"Gateway {namespace_of(gateway.props)}/{name_of(gateway.props, gateway.name)}"
        for listener in items(dig(gateway.props, "spec", "listeners")):
            listener = mapping(listener)
            protocol, listener_name = listener.get("protocol"), str(listener.get("name"))
            if protocol == "HTTPS":
                continue
            if protocol == "HTTP":
                attached = [r for r in routes if _attached(r, gateway, listener_name)]
                if attached and all(_redirects_to_https_only(r) for r in attached):
                    continue
                yield (
                    (
                        f"{label}: listener {listener_name} serves plain HTTP on port {show(listener.get('port'))}: "
                        "its routes must only redirect to https (RequestRedirect scheme https, no backendRefs)"
                    ),
                    gateway.urn,
                )
                continue
            yield f"{label}: listener {listener_name} is {protocol}, not HTTPS", gateway.urn


@resource_rule("load-balancer-certificate", Severity.HIGH, MANDATORY, types=[SERVICE, *GATEWAYS])
def CERTIFICATE(args: ResourceValidationArgs) -> Iterator[str]:
    """Public load balancers carry a certificate: ACM or pod TLS on Services, a certmap or certificateRefs on Gateways."""
    props, name = args.props, f"{namespace_of(args.props)}/{name_of(args.props, args.name)}"
    if args.resource_type == SERVICE:
        if not _public_load_balancer(props):
            args.not_applicable("not a public LoadBalancer")
        elif not _annotations(props).get(AWS_SSL_CERT) and not _pod_tls(props):
            yield (
                f"Service {name} is a public load balancer without a certificate: set {AWS_SSL_CERT} "
                f"to an ACM certificate, or terminate TLS in the pods ({POD_TLS_ANNOTATION}: pod)"
            )
        return
    if not _public_gateway(props):
        args.not_applicable("an internal Gateway")
    if _annotations(props).get(GKE_CERTIFICATE_MAP):
        return
    for listener in items(dig(props, "spec", "listeners")):
        listener = mapping(listener)
        if listener.get("protocol") == "HTTPS" and not items(dig(listener, "tls", "certificateRefs")):
            yield (
                f"Gateway {name}: HTTPS listener {listener.get('name')} has no certificate: annotate "
                f"{GKE_CERTIFICATE_MAP} or give it tls.certificateRefs"
            )


POLICIES = [HTTPS_ONLY, CERTIFICATE]
