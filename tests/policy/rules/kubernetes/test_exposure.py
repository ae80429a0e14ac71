"""Public exposure: HTTPS-only listeners, and a certificate on every public load balancer."""

from __future__ import annotations

from typing import Any

from components.k8s.services import TLS_TERMINATION
from policy.harness import Resource
from policy.rules.kubernetes.exposure import CERTIFICATE, HTTPS_ONLY, POD_TLS_ANNOTATION
from tests.policy.checks import K8S, assert_complies, assert_violates, check, namespaced, provider, resource

SERVICE = "kubernetes:core/v1:Service"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
NAMESPACE = "meridian-us-east-1"
ACM = {
    "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": "arn:aws:acm:us-east-1:123456789012:certificate/x",
    "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "443",
}
POD_TLS = {POD_TLS_ANNOTATION: "pod"}


def load_balancer(
    ports: list[tuple[str, int]], annotations: dict[str, str] | None = None, name: str = "server", kind="LoadBalancer"
) -> Resource:
    return resource(
        SERVICE,
        name,
        K8S,
        metadata={"name": name, "namespace": NAMESPACE, "annotations": annotations or {}},
        spec={
            "type": kind,
            "ports": [{"name": n, "port": float(p), "targetPort": "http", "protocol": "TCP"} for n, p in ports],
        },
    )


def gateway(listeners: list[dict[str, Any]], annotations: dict[str, str] | None = None, cluster=K8S) -> Resource:
    return resource(
        GATEWAY,
        f"front-door-{cluster.name}",
        cluster,
        metadata={"name": "front-door", "namespace": NAMESPACE, "annotations": annotations or {}},
        spec={"gatewayClassName": "gke-l7-global-external-managed", "listeners": listeners},
    )


HTTPS = {"name": "https", "protocol": "HTTPS", "port": 443.0}
HTTP = {"name": "http", "protocol": "HTTP", "port": 80.0}
CERTMAP = {"networking.gke.io/certmap": "us-east-1-front-door"}


def route(name: str, section: str | None, rule: dict[str, Any], cluster=K8S) -> Resource:
    parent = {"name": "front-door", **({"sectionName": section} if section else {})}
    return namespaced(
        HTTP_ROUTE,
        name,
        NAMESPACE,
        cluster,
        logical_name=f"{name}-{cluster.name}",
        spec={"parentRefs": [parent], "rules": [rule]},
    )


REDIRECT = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301.0}}]}
TO_SERVER = {"backendRefs": [{"name": "server", "port": 8080.0}]}


def test_the_components_and_the_pack_agree_on_the_pod_tls_annotation() -> None:
    assert TLS_TERMINATION == POD_TLS_ANNOTATION


# -- public-listener-https-only ------------------------------------------------------------


def test_an_nlb_terminating_tls_on_443_alone_complies() -> None:
    assert_complies(HTTPS_ONLY, load_balancer([("https", 443)], ACM))


def test_a_plain_http_public_listener_violates() -> None:
    assert_violates(HTTPS_ONLY, load_balancer([("http", 8080)]), containing="public port 8080 is not HTTPS")


def test_port_80_beside_the_tls_listener_violates() -> None:
    lb = load_balancer([("https", 443), ("http", 80)], ACM)
    assert_violates(HTTPS_ONLY, lb, containing="public port 80 is not HTTPS")


def test_443_outside_the_certificates_ssl_ports_is_plain_tcp_and_violates() -> None:
    lb = load_balancer([("https", 443)], {**ACM, "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "8443"})
    assert_violates(HTTPS_ONLY, lb, containing="public port 443 has no TLS")


def test_pods_that_terminate_tls_may_listen_on_their_own_ports() -> None:
    """The SuperLink's Fleet port: gRPC over TLS, terminated by its pods."""
    assert_complies(HTTPS_ONLY, load_balancer([("fleet", 9092)], POD_TLS, name="superlink-fleet"))


def test_internal_and_cluster_ip_services_are_not_public_listeners() -> None:
    internal = load_balancer([("http", 8080)], {"networking.gke.io/load-balancer-type": "Internal"})
    assert_complies(HTTPS_ONLY, internal, load_balancer([("http", 8080)], name="replicas", kind="ClusterIP"))


def test_a_gateway_whose_http_listener_only_redirects_complies() -> None:
    assert_complies(
        HTTPS_ONLY,
        gateway([HTTPS, HTTP], CERTMAP),
        route("redirect", "http", REDIRECT),
        route("server", "https", TO_SERVER),
    )


def test_a_gateway_serving_content_over_plain_http_violates() -> None:
    found = "listener http serves plain HTTP on port 80"
    assert_violates(HTTPS_ONLY, gateway([HTTP]), route("server", "http", TO_SERVER), containing=found)
    # a route without a sectionName binds every listener, the HTTP one too
    assert_violates(HTTPS_ONLY, gateway([HTTPS, HTTP], CERTMAP), route("server", None, TO_SERVER), containing=found)


def test_a_redirect_to_plain_http_is_no_redirect_to_https() -> None:
    to_http = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "http"}}]}
    assert_violates(HTTPS_ONLY, gateway([HTTP]), route("redirect", "http", to_http), containing="plain HTTP")


def test_a_route_in_another_cluster_does_not_redirect_this_gateways_listener() -> None:
    eu = provider("kubernetes", "k8s-eu-west-1")
    assert_violates(HTTPS_ONLY, gateway([HTTP]), route("redirect", "http", REDIRECT, eu), containing="plain HTTP")


def test_a_tcp_listener_on_a_gateway_violates() -> None:
    tcp = {"name": "raw", "protocol": "TCP", "port": 9000.0}
    assert_violates(HTTPS_ONLY, gateway([tcp]), containing="listener raw is TCP")


# -- load-balancer-certificate -------------------------------------------------------------


def test_a_load_balancer_with_an_acm_certificate_or_pod_tls_complies() -> None:
    assert_complies(CERTIFICATE, load_balancer([("https", 443)], ACM))
    assert_complies(CERTIFICATE, load_balancer([("https", 443)], POD_TLS))


def test_a_certificate_less_load_balancer_violates() -> None:
    assert_violates(
        CERTIFICATE, load_balancer([("https", 443)]), containing="public load balancer without a certificate"
    )


def test_a_cluster_ip_service_needs_no_certificate() -> None:
    report = check(CERTIFICATE, load_balancer([("http", 8080)], kind="ClusterIP"))
    assert not report.violations and report.not_applicable


def test_a_gateway_with_a_certificate_map_or_listener_certificates_complies() -> None:
    assert_complies(CERTIFICATE, gateway([HTTPS, HTTP], CERTMAP))
    with_refs = {**HTTPS, "tls": {"mode": "Terminate", "certificateRefs": [{"name": "front-door-tls"}]}}
    assert_complies(CERTIFICATE, gateway([with_refs]))


def test_a_certificate_less_gateway_violates() -> None:
    assert_violates(CERTIFICATE, gateway([HTTPS, HTTP]), containing="HTTPS listener https has no certificate")
