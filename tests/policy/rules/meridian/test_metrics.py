"""Metrics ports stay inside the cluster: no public Service, Ingress or address-based NetworkPolicy leads to them."""

from __future__ import annotations

from policy.rules.meridian.metrics import METRICS_PRIVATE
from tests.policy.checks import assert_complies, assert_violates, namespaced

NS = "meridian-us-east-1"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def service(type_: str, *ports: tuple[int, int | str]):
    spec = {"type": type_, "ports": [{"name": f"p{i}", "port": p, "targetPort": t} for i, (p, t) in enumerate(ports)]}
    return namespaced("kubernetes:core/v1:Service", "server", NS, spec=spec)


def network_policy(*ingress: dict):
    return namespaced(NETWORK_POLICY, "server", NS, spec={"podSelector": {}, "ingress": list(ingress)})


def test_a_public_service_on_the_http_port_only_complies() -> None:
    assert_complies(METRICS_PRIVATE, service("LoadBalancer", (8080, "http")))


def test_a_public_service_with_the_metrics_port_violates() -> None:
    assert_violates(
        METRICS_PRIVATE,
        service("LoadBalancer", (8080, "http"), (9300, 9300)),
        containing="exposes the metrics port 9300 as LoadBalancer",
    )


def test_a_public_service_forwarding_to_the_named_metrics_port_violates() -> None:
    assert_violates(
        METRICS_PRIVATE, service("NodePort", (80, "metrics")), containing="metrics port metrics as NodePort"
    )


def test_the_trainer_metrics_port_counts_too() -> None:
    assert_violates(METRICS_PRIVATE, service("LoadBalancer", (9400, 9400)), containing="metrics port 9400")


def test_an_ingress_to_a_metrics_port_violates() -> None:
    path = {
        "path": "/metrics",
        "pathType": "Prefix",
        "backend": {"service": {"name": "server", "port": {"number": 9300}}},
    }
    ingress = namespaced(
        "kubernetes:networking.k8s.io/v1:Ingress", "server", NS, spec={"rules": [{"http": {"paths": [path]}}]}
    )
    assert_violates(METRICS_PRIVATE, ingress, containing="routes to a metrics port")


def test_a_network_policy_admitting_prometheus_to_the_metrics_port_complies() -> None:
    world = {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 8080, "protocol": "TCP"}]}
    scrape = {"from": [PROMETHEUS], "ports": [{"port": 9300, "protocol": "TCP"}]}
    assert_complies(METRICS_PRIVATE, network_policy(world, scrape))


def test_a_network_policy_admitting_the_world_to_the_metrics_port_violates() -> None:
    world = {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 8080}, {"port": 9300}]}
    assert_violates(METRICS_PRIVATE, network_policy(world), containing="admits the metrics port 9300 from addresses")


def test_a_network_policy_admitting_anyone_on_every_port_violates() -> None:
    assert_violates(METRICS_PRIVATE, network_policy({}), containing="from any source")


def test_the_ports_come_from_the_config() -> None:
    assert_complies(METRICS_PRIVATE, service("LoadBalancer", (9300, 9300)), config={"metricsPorts": [9999]})
