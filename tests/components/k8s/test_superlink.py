"""The SuperLink: one per stack, at home, TLS with node auth behind a gateway that keeps the
Control API inside its namespace."""

from __future__ import annotations

from components.k8s.flower import CONTROL_SERVICE, FLEET_SERVICE
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, flags
from workloads import contract


def _by_name(deployed: Deployed, name: str) -> list[dict]:
    return [o for o in deployed.objects("Deployment") if o["metadata"]["name"] == name]


def test_exactly_one_superlink_in_the_home_namespace(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    assert superlink["metadata"]["namespace"] == namespace_name(deployed.config.home)
    assert superlink["spec"]["replicas"] == 1


def test_superlink_runs_tls_with_node_auth_and_binds_loopback_only(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    flower = next(c for c in containers(superlink) if c["name"] == "superlink")
    args = flags(flower)
    assert "--insecure" not in args
    assert "--enable-supernode-auth" in args
    assert args["--ssl-certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CERT_FILE}"
    assert args["--ssl-keyfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_KEY_FILE}"
    assert args["--ssl-ca-certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
    assert args["--host"] == "127.0.0.1"  # Fleet and Control share this port: never exposed
    assert "--disable-runtime-dependency-installation" in args


def test_the_gateway_splits_fleet_and_control_by_path(deployed: Deployed) -> None:
    (superlink,) = _by_name(deployed, "superlink")
    gateway = next(c for c in containers(superlink) if c["name"] == "gateway")
    assert gateway["command"] == ["python", "-m", contract.SUPERLINK_GATEWAY_MODULE]
    routes = [gateway["args"][i + 1] for i, a in enumerate(gateway["args"]) if a == "--route"]
    assert routes == [
        f"{contract.SUPERLINK_FLEET_PORT}={contract.FLEET_PATH_PREFIX}",
        f"{contract.SUPERLINK_CONTROL_PORT}={contract.CONTROL_PATH_PREFIX}",
    ]


def test_no_load_balancer_exposes_the_control_port_or_the_superlinks_own_port(deployed: Deployed) -> None:
    public_ports = {
        p["port"]
        for s in deployed.objects("Service")
        if s["spec"]["type"] == "LoadBalancer"
        for p in s["spec"]["ports"]
    }
    assert contract.SUPERLINK_CONTROL_PORT not in public_ports
    assert contract.SUPERLINK_SERVERAPPIO_PORT not in public_ports
    home = namespace_name(deployed.config.home)
    fleet = deployed.named("Service", home, FLEET_SERVICE)
    assert fleet["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in fleet["spec"]["ports"]] == [contract.SUPERLINK_FLEET_PORT]
    assert deployed.named("Service", home, CONTROL_SERVICE)["spec"]["type"] == "ClusterIP"


def test_control_port_is_admitted_only_from_the_namespace(deployed: Deployed) -> None:
    policy = deployed.named("NetworkPolicy", namespace_name(deployed.config.home), "superlink")
    control = [
        r
        for r in policy["spec"]["ingress"]
        if {"protocol": "TCP", "port": contract.SUPERLINK_CONTROL_PORT} in r["ports"]
    ]
    assert control and all(peer == {"podSelector": {}} for rule in control for peer in rule["from"])
