"""Callers reach every server and edge site over HTTPS only: on AWS an NLB listener on 443
with the region's ACM certificate, in a `kubernetes` region 443 onto pods that serve TLS
themselves, on GCP a ClusterIP Service behind the region's Gateway (test_gateway.py).
Nothing public listens on port 80."""

from __future__ import annotations

from typing import Any

from components.catalog import Cloud
from components.config import Region
from components.k8s.edge import site_app
from components.k8s.metrics_receiver import METRICS_RECEIVER_APP
from components.k8s.namespace import namespace_name
from components.k8s.services import (
    AWS_BACKEND_PROTOCOL,
    AWS_SSL_CERT,
    AWS_SSL_NEGOTIATION_POLICY,
    AWS_SSL_PORTS,
    AWS_TLS_POLICY,
    POD_TLS,
    TLS_TERMINATION,
)
from components.k8s.serving import SERVER_APP
from components.k8s.superlink import FLEET_SERVICE
from tests.components.k8s.conftest import Deployed
from workloads import contract

HTTPS_ONLY = [{"name": "https", "port": contract.PUBLIC_TLS_PORT, "targetPort": "http", "protocol": "TCP"}]


def _front_door_services(deployed: Deployed, region: Region) -> list[dict[str, Any]]:
    """The server's and every edge site's Service in `region`."""
    namespace = namespace_name(region.name)
    names = [SERVER_APP, *(site_app(site) for site in region.edge_sites)]
    return [deployed.named("Service", namespace, name) for name in names]


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def test_aws_servers_and_edges_listen_on_443_only_with_the_regions_acm_certificate(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        if region.cloud is not Cloud.AWS:
            continue
        for svc in _front_door_services(deployed, region):
            assert svc["spec"]["type"] == "LoadBalancer"
            assert svc["spec"]["ports"] == HTTPS_ONLY, svc["metadata"]["name"]
            annotations = _annotations(svc)
            assert annotations[AWS_SSL_CERT].startswith(f"arn:aws:acm:{region.name}:")
            assert annotations[AWS_SSL_PORTS] == str(contract.PUBLIC_TLS_PORT)
            assert annotations[AWS_SSL_NEGOTIATION_POLICY] == AWS_TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
            # TLS ends at the NLB: plain TCP to the pods' http port inside the VPC
            assert annotations[AWS_BACKEND_PROTOCOL] == "tcp"
            assert TLS_TERMINATION not in annotations


def test_kubernetes_regions_map_443_onto_pods_that_terminate_tls_themselves(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        if region.cloud is not Cloud.KUBERNETES:
            continue
        for svc in _front_door_services(deployed, region):
            assert svc["spec"]["type"] == "LoadBalancer"
            assert svc["spec"]["ports"] == HTTPS_ONLY, svc["metadata"]["name"]
            assert _annotations(svc).items() >= POD_TLS.items()
            assert AWS_SSL_CERT not in _annotations(svc)


def test_gcp_servers_and_edges_are_reached_only_through_the_regions_gateway(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        if region.cloud is not Cloud.GCP:
            continue
        for svc in _front_door_services(deployed, region):
            assert svc["spec"]["type"] == "ClusterIP", svc["metadata"]["name"]
            assert svc["spec"]["ports"] == [
                {"name": "http", "port": contract.HTTP_PORT, "targetPort": "http", "protocol": "TCP"}
            ]
        # every public name of the region resolves to the Gateway's one reserved address
        addresses = {deployed.inference_endpoints[region.name]}
        if deployed.edge_endpoints is not None:
            addresses |= set(deployed.edge_endpoints[region.name].values())
        assert len(addresses) == 1


def test_nothing_public_listens_on_plain_http(deployed: Deployed) -> None:
    for svc in deployed.objects("Service"):
        if svc["spec"]["type"] != "LoadBalancer":
            continue
        ports = {p["port"] for p in svc["spec"]["ports"]}
        assert 80 not in ports and contract.HTTP_PORT not in ports, svc["metadata"]["name"]


def test_the_federations_load_balancers_say_their_pods_terminate_tls(deployed: Deployed) -> None:
    home = namespace_name(deployed.config.home)
    federation = [deployed.named("Service", home, FLEET_SERVICE)]
    federation += [s for s in deployed.objects("Service") if s["metadata"]["name"] == METRICS_RECEIVER_APP]
    for svc in federation:
        assert svc["spec"]["type"] == "LoadBalancer"
        assert _annotations(svc).items() >= POD_TLS.items(), svc["metadata"]["name"]
