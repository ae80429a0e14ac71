"""Flower TLS and the private control API."""

from __future__ import annotations

from policy.rules.meridian.flower import CONTROL_API_PRIVATE, FLOWER_TLS
from tests.policy.checks import assert_complies, assert_violates, namespaced
from tests.policy.rules.kubernetes.workloads import deployment, hardened_container

TLS = ["--ssl-certfile=/tls/tls.crt", "--ssl-keyfile=/tls/tls.key", "--ssl-ca-certfile=/tls/ca.crt"]
NS = "meridian-federation"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def superlink(*args: str):
    container = hardened_container(name="superlink", command=["flower-superlink"], args=list(args))
    return deployment(container, name="superlink", replicas=1, namespace=NS)


def service(type_: str, port: int, target: int | None = None):
    ports = [{"name": "p", "port": port, "targetPort": target or port}]
    spec = {"type": type_, "ports": ports}
    return namespaced("kubernetes:core/v1:Service", "superlink", NS, logical_name=f"svc-{type_}-{port}", spec=spec)


def test_a_superlink_with_certificates_complies() -> None:
    assert_complies(FLOWER_TLS, superlink(*TLS))


def test_an_insecure_superlink_violates() -> None:
    assert_violates(FLOWER_TLS, superlink("--insecure"), containing="flower-superlink runs with --insecure")


def test_a_supernode_without_root_certificates_violates() -> None:
    node = deployment(hardened_container(command=["flower-supernode"], args=["--superlink", "link:9092"]))
    assert_violates(FLOWER_TLS, node, containing="lacks --root-certificates")


def test_a_cluster_ip_service_for_the_control_port_complies() -> None:
    assert_complies(CONTROL_API_PRIVATE, superlink(*TLS), service("ClusterIP", 9093))


def test_a_load_balancer_for_the_fleet_port_complies() -> None:
    assert_complies(CONTROL_API_PRIVATE, superlink(*TLS), service("LoadBalancer", 9092))


def test_a_load_balancer_in_front_of_the_control_port_violates() -> None:
    assert_violates(
        CONTROL_API_PRIVATE, service("LoadBalancer", 443, 9093), containing="control port 9093 as LoadBalancer"
    )


def test_an_ingress_to_the_control_port_violates() -> None:
    ingress = namespaced(
        "kubernetes:networking.k8s.io/v1:Ingress",
        "flwr",
        NS,
        spec={
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "superlink", "port": {"number": 9093}}},
                            }
                        ]
                    }
                }
            ]
        },
    )
    assert_violates(CONTROL_API_PRIVATE, ingress, containing="routes to the control port")


def test_a_network_policy_admitting_the_world_to_all_ports_violates() -> None:
    spec = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
    policy = namespaced(NETWORK_POLICY, "open", NS, spec=spec)
    deployed = superlink(*TLS)
    assert_violates(CONTROL_API_PRIVATE, deployed, policy, containing="admits the control port 9093 from outside")


def test_a_network_policy_admitting_the_world_to_the_fleet_port_only_complies() -> None:
    spec = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 9092}]}]}
    policy = namespaced(NETWORK_POLICY, "fleet", NS, spec=spec)
    assert_complies(CONTROL_API_PRIVATE, superlink(*TLS), policy)
