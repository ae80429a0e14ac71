"""Global load balancers: HTTPS only (plain HTTP may only redirect) with a TLS 1.2+ SSL policy."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from ..decorators import MANDATORY, stack_rule
from ..props import dig
from ..stack import of_types, referenced

FORWARDING_RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
HTTPS_PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
HTTP_PROXY = "gcp:compute/targetHttpProxy:TargetHttpProxy"
URL_MAP = "gcp:compute/uRLMap:URLMap"
SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
MODERN_TLS = ("TLS_1_2", "TLS_1_3")
MODERN_PROFILES = ("MODERN", "RESTRICTED")


def _redirects_to_https(args: StackValidationArgs, proxy: PolicyResource) -> bool:
    url_map = referenced(args, proxy.props.get("urlMap"), URL_MAP)
    return url_map is not None and dig(url_map.props, "defaultUrlRedirect", "httpsRedirect") is True


@stack_rule("gcp-lb-https-only", Severity.HIGH, MANDATORY)
def HTTPS_ONLY(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Global load balancers serve HTTPS only; plain HTTP only redirects to HTTPS."""
    for rule in of_types(args, FORWARDING_RULE):
        target = rule.props.get("target")
        if referenced(args, target, HTTPS_PROXY) is not None:
            continue
        http_proxy = referenced(args, target, HTTP_PROXY)
        if http_proxy is not None and _redirects_to_https(args, http_proxy):
            continue
        yield (
            (
                f"forwarding rule {rule.name} serves {target!r} without TLS: target an HTTPS proxy, "
                "or an HTTP proxy whose URL map only redirects to HTTPS"
            ),
            rule.urn,
        )


@stack_rule("gcp-lb-modern-tls", Severity.HIGH, MANDATORY)
def MODERN_TLS_POLICY(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """HTTPS load balancers use an SSL policy with a MODERN or RESTRICTED profile and TLS 1.2+."""
    for proxy in of_types(args, HTTPS_PROXY):
        policy = referenced(args, proxy.props.get("sslPolicy"), SSL_POLICY)
        if policy is None:
            yield f"HTTPS proxy {proxy.name} has no sslPolicy of this stack (GCP's default allows TLS 1.0)", proxy.urn
            continue
        version, profile = policy.props.get("minTlsVersion"), policy.props.get("profile")
        if version not in MODERN_TLS or profile not in MODERN_PROFILES:
            yield (
                f"SSL policy {policy.name} is {profile}/{version}: use MODERN or RESTRICTED with TLS_1_2+",
                policy.urn,
            )


POLICIES = [HTTPS_ONLY, MODERN_TLS_POLICY]
