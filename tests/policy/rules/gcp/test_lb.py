"""Global load balancers: HTTPS only, modern TLS."""

from __future__ import annotations

from policy.rules.gcp.lb import HTTPS_ONLY, MODERN_TLS_POLICY
from tests.policy.checks import GCP_EU, assert_complies, assert_violates, resource

LINK = "https://www.googleapis.com/compute/v1/projects/meridian/global"


def https_stack(min_tls: str = "TLS_1_2", profile: str = "MODERN"):
    return [
        resource("gcp:compute/sSLPolicy:SSLPolicy", "tls", GCP_EU, minTlsVersion=min_tls, profile=profile),
        resource(
            "gcp:compute/targetHttpsProxy:TargetHttpsProxy",
            "https",
            GCP_EU,
            sslPolicy=f"{LINK}/sslPolicies/tls",
            urlMap="cdn",
        ),
        resource(
            "gcp:compute/globalForwardingRule:GlobalForwardingRule",
            "fr443",
            GCP_EU,
            portRange="443",
            target=f"{LINK}/targetHttpsProxies/https",
        ),
    ]


def redirect(https_redirect: bool):
    return [
        resource("gcp:compute/uRLMap:URLMap", "redirect", GCP_EU, defaultUrlRedirect={"httpsRedirect": https_redirect}),
        resource("gcp:compute/targetHttpProxy:TargetHttpProxy", "http", GCP_EU, urlMap=f"{LINK}/urlMaps/redirect"),
        resource(
            "gcp:compute/globalForwardingRule:GlobalForwardingRule",
            "fr80",
            GCP_EU,
            portRange="80",
            target=f"{LINK}/targetHttpProxies/http",
        ),
    ]


def test_https_plus_an_http_redirect_complies() -> None:
    assert_complies(HTTPS_ONLY, *https_stack(), *redirect(True))


def test_plain_http_serving_content_violates() -> None:
    assert_violates(HTTPS_ONLY, *redirect(False), containing="fr80 serves")


def test_a_modern_tls_policy_complies() -> None:
    assert_complies(MODERN_TLS_POLICY, *https_stack())


def test_a_compatible_tls_1_0_policy_violates() -> None:
    assert_violates(MODERN_TLS_POLICY, *https_stack("TLS_1_0", "COMPATIBLE"), containing="COMPATIBLE/TLS_1_0")


def test_a_proxy_without_an_ssl_policy_violates() -> None:
    proxy = resource("gcp:compute/targetHttpsProxy:TargetHttpsProxy", "https", GCP_EU, urlMap="cdn")
    assert_violates(MODERN_TLS_POLICY, proxy, containing="no sslPolicy")
