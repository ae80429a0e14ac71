"""A GCP region's front door is one GKE Gateway: its reserved global IP, its Certificate
Manager map, its MODERN SSL policy; HTTPS routes for the region's, the global and each edge
site's name, each Service health-checked on the readiness path; plain HTTP only redirects."""

from __future__ import annotations

from typing import Any

from components.catalog import Cloud
from components.config import Region
from components.front_door import edge_host, global_host, region_host
from components.k8s.edge import site_app
from components.k8s.gateway import (
    CERTIFICATE_MAP_ANNOTATION,
    GATEWAY_CLASS,
    GATEWAY_NAME,
    HTTP_LISTENER,
    HTTPS_LISTENER,
)
from components.k8s.namespace import namespace_name
from components.k8s.serving import SERVER_APP
from tests.components.k8s.conftest import Deployed
from workloads import contract


def _gcp(deployed: Deployed) -> list[Region]:
    return [r for r in deployed.config.regions if r.cloud is Cloud.GCP]


def _in(deployed: Deployed, kind: str, region: Region) -> list[dict[str, Any]]:
    return [o for o in deployed.objects(kind) if o["metadata"]["namespace"] == namespace_name(region.name)]


def test_only_gcp_regions_have_a_gateway(deployed: Deployed) -> None:
    namespaces = {g["metadata"]["namespace"] for g in deployed.objects("Gateway")}
    assert namespaces == {namespace_name(r.name) for r in _gcp(deployed)}


def test_the_gateway_binds_the_reserved_address_and_presents_the_certificate_map(deployed: Deployed) -> None:
    for region in _gcp(deployed):
        (gateway,) = _in(deployed, "Gateway", region)
        assert gateway["metadata"]["name"] == GATEWAY_NAME
        assert gateway["metadata"]["annotations"][CERTIFICATE_MAP_ANNOTATION]
        spec = gateway["spec"]
        assert spec["gatewayClassName"] == GATEWAY_CLASS == "gke-l7-global-external-managed"
        ((address),) = spec["addresses"]
        assert address["type"] == "NamedAddress" and address["value"]
        listeners = {(li["name"], li["protocol"], li["port"]) for li in spec["listeners"]}
        assert listeners == {(HTTPS_LISTENER, "HTTPS", contract.PUBLIC_TLS_PORT), (HTTP_LISTENER, "HTTP", 80)}
        # the certificate map is the TLS: GKE refuses it together with tls.certificateRefs
        assert all("tls" not in li for li in spec["listeners"])


def test_plain_http_only_redirects_to_https(deployed: Deployed) -> None:
    for region in _gcp(deployed):
        on_http = [
            r
            for r in _in(deployed, "HTTPRoute", region)
            if any(p.get("sectionName") == HTTP_LISTENER for p in r["spec"]["parentRefs"])
        ]
        (redirect,) = on_http
        (rule,) = redirect["spec"]["rules"]
        assert "backendRefs" not in rule
        assert rule["filters"] == [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
        ]


def test_https_routes_send_each_public_name_to_its_service(deployed: Deployed) -> None:
    config = deployed.config
    for region in _gcp(deployed):
        routes = {}
        for route in _in(deployed, "HTTPRoute", region):
            (parent,) = route["spec"]["parentRefs"]
            assert parent["name"] == GATEWAY_NAME and "sectionName" in parent  # never both listeners
            if parent["sectionName"] == HTTPS_LISTENER:
                ((backend,),) = [rule["backendRefs"] for rule in route["spec"]["rules"]]
                assert backend["port"] == contract.HTTP_PORT
                routes[backend["name"]] = set(route["spec"]["hostnames"])
        expected = {SERVER_APP: {region_host(config, region.name), global_host(config)}}
        expected |= {site_app(s): {edge_host(config, region.name, s.name)} for s in region.edge_sites}
        assert routes == expected


def test_every_routed_service_is_health_checked_on_the_readiness_path(deployed: Deployed) -> None:
    for region in _gcp(deployed):
        checked = {}
        for policy in _in(deployed, "HealthCheckPolicy", region):
            target = policy["spec"]["targetRef"]
            assert (target["group"], target["kind"]) == ("", "Service")
            checked[target["name"]] = policy["spec"]["default"]["config"]
        assert set(checked) == {SERVER_APP, *(site_app(s) for s in region.edge_sites)}
        for config in checked.values():
            assert config == {
                "type": "HTTP",
                "httpHealthCheck": {"port": contract.HTTP_PORT, "requestPath": contract.READINESS_PATH},
            }


def test_the_gateway_negotiates_under_the_front_doors_ssl_policy(deployed: Deployed) -> None:
    for region in _gcp(deployed):
        (policy,) = _in(deployed, "GCPGatewayPolicy", region)
        assert policy["spec"]["targetRef"] == {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": GATEWAY_NAME,
        }
        assert policy["spec"]["default"]["sslPolicy"]
