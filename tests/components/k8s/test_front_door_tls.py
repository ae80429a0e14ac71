"""The servers' and edges' certificates, all from the stack's CA: every edge site escalates to
its region over mutual TLS with a client certificate of its own, the region's servers take
escalations only with a client certificate of that CA, on a port of their own behind an
in-cluster Service; in `kubernetes` regions the pods serve HTTPS on their public port for
their public names and their load balancer's address."""

from __future__ import annotations

from typing import Any

from components.config import Region
from components.front_door import edge_host, global_host, region_host
from components.k8s import front_door_tls as tls
from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, env_of, plain, pod_spec
from workloads import contract

SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"


def _stack_ca(deployed: Deployed, region: Region) -> str:
    """The CA the SuperNodes trust: the stack's."""
    return deployed.named("Secret", namespace_name(region.name), "supernode-auth")["stringData"][contract.TLS_CA_FILE]


def _mounted(deployment: dict[str, Any], container: dict[str, Any], mount: str) -> tuple[str, set[str]]:
    """The Secret mounted read-only at `mount`, and the keys it projects there."""
    (volume_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == mount]
    assert volume_mount["readOnly"]
    spec = pod_spec(deployment)
    assert spec is not None
    (volume,) = [v for v in spec["volumes"] if v["name"] == volume_mount["name"]]
    return volume["secret"]["secretName"], {item["key"] for item in volume["secret"]["items"]}


def _one_container(deployed: Deployed, region: Region, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = deployed.named("Deployment", namespace_name(region.name), name)
    (container,) = containers(deployment)
    return deployment, container


def _request(deployed: Deployed, suffix: str) -> dict[str, Any]:
    (request,) = [plain(r.inputs) for r in deployed.resources if r.type == CERT_REQUEST and r.name.endswith(suffix)]
    return request


def _names(request: dict[str, Any]) -> list[str]:
    return [*request.get("dnsNames", []), *request.get("ipAddresses", [])]


def test_each_edge_site_escalates_over_mutual_tls_with_a_client_certificate_of_its_own(deployed: Deployed) -> None:
    client_certs = [
        r.name for r in deployed.resources if r.type == SIGNED_CERT and "client_auth" in r.inputs["allowedUses"]
    ]
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        for site in region.edge_sites:
            deployment, edge = _one_container(deployed, region, f"edge-{site.name}")
            env = env_of(edge)
            assert env[contract.ENV_UPSTREAM_URL] == (
                f"https://{tls.ESCALATION_SERVICE}.{namespace}.svc.cluster.local:{contract.ESCALATION_PORT}"
            )
            mount = contract.ESCALATION_TLS_MOUNT
            assert env[contract.ENV_UPSTREAM_CA_FILE] == f"{mount}/{contract.TLS_CA_FILE}"
            assert env[contract.ENV_UPSTREAM_CERT_FILE] == f"{mount}/{contract.TLS_CERT_FILE}"
            assert env[contract.ENV_UPSTREAM_KEY_FILE] == f"{mount}/{contract.TLS_KEY_FILE}"
            secret_name, files = _mounted(deployment, edge, mount)
            assert secret_name == f"edge-{site.name}-tls"
            assert files == {contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE}
            secret = deployed.named("Secret", namespace, secret_name)["stringData"]
            assert secret[contract.TLS_CA_FILE] == _stack_ca(deployed, region), "the region is verified by the CA"
            (client,) = [n for n in client_certs if n.endswith(f"-edge-{site.name}-client-cert")]
            assert (
                "server_auth"
                not in plain(next(r.inputs for r in deployed.resources if r.name == client))["allowedUses"]
            )
            assert _request(deployed, f"-edge-{site.name}-client-csr")["subject"]["commonName"] == f"edge-{site.name}"


def test_servers_take_escalations_on_their_own_port_only_with_a_client_certificate_of_the_stack_ca(
    deployed: Deployed,
) -> None:
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        deployment, server = _one_container(deployed, region, "server")
        env = env_of(server)
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        escalation_services = [
            s
            for s in deployed.objects("Service")
            if s["metadata"]["namespace"] == namespace and s["metadata"]["name"] == tls.ESCALATION_SERVICE
        ]
        if not region.edge_sites:
            assert contract.ENV_ESCALATION_PORT not in env and "escalation" not in ports
            assert escalation_services == []
            continue
        assert env[contract.ENV_ESCALATION_PORT] == str(contract.ESCALATION_PORT) == str(ports["escalation"])
        mount = contract.FRONT_DOOR_TLS_MOUNT
        assert env[contract.ENV_ESCALATION_CLIENT_CA_FILE] == f"{mount}/{tls.CA}"
        assert env[contract.ENV_ESCALATION_CERT_FILE] == f"{mount}/{tls.ESCALATION_CERT}"
        assert env[contract.ENV_ESCALATION_KEY_FILE] == f"{mount}/{tls.ESCALATION_KEY}"
        secret_name, files = _mounted(deployment, server, mount)
        assert {tls.CA, tls.ESCALATION_CERT, tls.ESCALATION_KEY} <= files
        secret = deployed.named("Secret", namespace, secret_name)["stringData"]
        assert secret[tls.CA] == _stack_ca(deployed, region), "client certificates must chain to the stack's CA"
        (service,) = escalation_services
        assert service["spec"]["type"] == "ClusterIP", "never behind the load balancer"
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
            (contract.ESCALATION_PORT, "escalation")
        ]
        upstream = f"{tls.ESCALATION_SERVICE}.{namespace}.svc.cluster.local"
        assert upstream in _names(_request(deployed, f"{region.name}-workloads-inference-escalation-csr"))


def test_kubernetes_regions_serve_https_for_their_public_names_and_cloud_regions_leave_it_to_the_load_balancer(
    deployed: Deployed,
) -> None:
    config = deployed.config
    for region in config.regions:
        https = tls.serves_https(region)
        hosts = {"server": [region_host(config, region.name), global_host(config)]}
        hosts |= {f"edge-{s.name}": [edge_host(config, region.name, s.name)] for s in region.edge_sites}
        addresses = {"server": deployed.inference_endpoints[region.name]}
        if deployed.edge_endpoints is not None:
            addresses |= {f"edge-{site}": a for site, a in deployed.edge_endpoints[region.name].items()}
        for app, names in hosts.items():
            deployment, container = _one_container(deployed, region, app)
            env = env_of(container)
            if not https:
                assert contract.ENV_TLS_CERT_FILE not in env and contract.ENV_TLS_KEY_FILE not in env
                continue
            mount = contract.FRONT_DOOR_TLS_MOUNT
            assert env[contract.ENV_TLS_CERT_FILE] == f"{mount}/{tls.PUBLIC_CERT}"
            assert env[contract.ENV_TLS_KEY_FILE] == f"{mount}/{tls.PUBLIC_KEY}"
            _, files = _mounted(deployment, container, mount)
            assert {tls.PUBLIC_CERT, tls.PUBLIC_KEY} <= files
            component = "inference" if app == "server" else app
            covered = _names(_request(deployed, f"{region.name}-workloads-{component}-public-csr"))
            assert set(names) <= set(covered)
            assert addresses.get(app, names[0]) in covered, "the load balancer's address too"
