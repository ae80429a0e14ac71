"""The global view: in a stack of several clusters, every other cluster's Prometheus
remote-writes its series to the home's, through one receiver at home that admits only the
federation's client certificates (mutual TLS) and forwards only the receive path. A stack of
one cluster gets none of it: its one Prometheus sees every region already."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.config import load_stack
from components.k8s import monitoring
from components.k8s.clusters import cluster_regions
from components.k8s.metrics_receiver import METRICS_RECEIVER_APP
from components.k8s.namespace import namespace_name
from tests.components import custom_resources
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, flags, plain
from workloads import contract

RELEASE = "kubernetes:helm.sh/v3:Release"
SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"


def _clusters(deployed: Deployed) -> int:
    config = deployed.config
    return len({cluster_regions(config, r)[0].name for r in config.regions})


def _prometheus_specs(deployed: Deployed) -> dict[str, dict[str, Any]]:
    """Each installed kube-prometheus-stack's prometheusSpec, by its cluster's `cluster` label."""
    specs = [
        plain(r.inputs)["values"]["prometheus"]["prometheusSpec"]
        for r in deployed.resources
        if r.type == RELEASE and r.inputs["chart"] == monitoring.CHART
    ]
    return {spec["externalLabels"]["cluster"]: spec for spec in specs}


def _home_cluster(deployed: Deployed) -> str:
    return cluster_regions(deployed.config, deployed.config.home_region)[0].name


def _receivers(deployed: Deployed) -> list[dict[str, Any]]:
    return [o for o in deployed.objects("Deployment") if o["metadata"]["name"] == METRICS_RECEIVER_APP]


def test_the_shipped_stacks_of_several_clusters_have_a_global_view_and_the_one_cluster_stack_none() -> None:
    expected = {"aws-prod": True, "dev": True, "gcp-eu": True, "multicloud-prod": True, "onprem": True, "local": False}
    assert {stack: monitoring.global_view(load_stack(stack)) for stack in expected} == expected


def test_an_existing_home_cluster_whose_prometheus_is_reused_gets_no_global_view() -> None:
    """Meridian does not reconfigure a Prometheus it does not own."""
    config = load_stack("onprem")
    reused = config.model_copy(
        update={"monitoring": config.monitoring.model_copy(update={"existing_clusters": "reuse"})}
    )
    assert monitoring.global_view(config)
    assert not monitoring.global_view(reused)
    assert not any(monitoring.sends_home(reused, r) for r in reused.regions)


def test_a_stack_of_several_clusters_has_exactly_one_receiver_at_home(deployed: Deployed) -> None:
    receivers = _receivers(deployed)
    if _clusters(deployed) == 1:
        assert receivers == []
        assert deployed.metrics_receiver_address is None
        return
    (receiver,) = receivers
    assert receiver["metadata"]["namespace"] == namespace_name(deployed.config.home)
    assert deployed.metrics_receiver_address is not None
    assert deployed.metrics_receiver_address.endswith(f":{contract.METRICS_RECEIVER_PORT}")


def test_the_receiver_requires_client_certificates_and_forwards_only_the_receive_path(deployed: Deployed) -> None:
    for receiver in _receivers(deployed):
        (gateway,) = containers(receiver)
        assert gateway["command"] == ["python", "-m", contract.SUPERLINK_GATEWAY_MODULE]
        args = flags(gateway)
        assert args["--upstream"] == monitoring.PROMETHEUS_URL  # plain http, inside the cluster
        assert args["--route"] == f"{contract.METRICS_RECEIVER_PORT}=POST {contract.METRICS_RECEIVE_PATH}"
        assert args["--client-ca-certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CA_FILE}"
        assert args["--certfile"] == f"{contract.CERTS_MOUNT}/{contract.TLS_CERT_FILE}"


def test_the_receivers_service_is_public_on_its_one_port_which_is_no_metrics_port(deployed: Deployed) -> None:
    services = [s for s in deployed.objects("Service") if s["metadata"]["name"] == METRICS_RECEIVER_APP]
    assert len(services) == len(_receivers(deployed))
    for service in services:
        assert service["spec"]["type"] == "LoadBalancer"
        (port,) = service["spec"]["ports"]
        assert (port["port"], port["name"]) == (contract.METRICS_RECEIVER_PORT, "remote-write")
        assert port["port"] not in {contract.METRICS_PORT, contract.TRAINER_METRICS_PORT}


def test_the_receiver_is_reached_from_anywhere_on_its_port_and_reaches_only_the_home_prometheus(
    deployed: Deployed,
) -> None:
    if not _receivers(deployed):
        return
    policy = deployed.named("NetworkPolicy", namespace_name(deployed.config.home), METRICS_RECEIVER_APP)
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": contract.METRICS_RECEIVER_PORT, "protocol": "TCP"}]
    assert ingress["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]  # mutual TLS is the gate
    dns, *others = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert others == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": monitoring.MONITORING_NAMESPACE}
                    },
                    "podSelector": {"matchLabels": monitoring.PROMETHEUS_POD_LABELS},
                }
            ],
            "ports": [{"port": monitoring.PROMETHEUS_PORT, "protocol": "TCP"}],
        }
    ]


def test_only_the_home_prometheus_receives_and_every_other_cluster_writes_there(deployed: Deployed) -> None:
    specs = _prometheus_specs(deployed)
    home = _home_cluster(deployed)
    if _clusters(deployed) == 1:
        assert all("enableRemoteWriteReceiver" not in s and "remoteWrite" not in s for s in specs.values())
        return
    assert {c for c, s in specs.items() if s.get("enableRemoteWriteReceiver")} == {home}
    assert "remoteWrite" not in specs[home]
    for cluster, spec in specs.items():
        if cluster == home:
            continue
        (write,) = spec["remoteWrite"]
        assert write["url"] == f"https://{deployed.metrics_receiver_address}{contract.METRICS_RECEIVE_PATH}"
        secret = {"name": monitoring.REMOTE_WRITE_SECRET}
        assert write["tlsConfig"] == {
            "ca": {"secret": secret | {"key": contract.TLS_CA_FILE}},
            "cert": {"secret": secret | {"key": contract.TLS_CERT_FILE}},
            "keySecret": secret | {"key": contract.TLS_KEY_FILE},
        }
        queue = write["queueConfig"]
        assert queue["maxShards"] <= 10  # few connections across the WAN
        assert queue["retryOnRateLimit"] is True


def test_only_the_home_notifies_so_no_alert_pages_twice(deployed: Deployed) -> None:
    """The home evaluates every region's series; a cluster writing home runs no Alertmanager."""
    values = {
        plain(r.inputs)["values"]["prometheus"]["prometheusSpec"]["externalLabels"]["cluster"]: plain(r.inputs)[
            "values"
        ]
        for r in deployed.resources
        if r.type == RELEASE and r.inputs["chart"] == monitoring.CHART
    }
    for cluster, release in values.items():
        writes_home = "remoteWrite" in release["prometheus"]["prometheusSpec"]
        assert release.get("alertmanager", {}).get("enabled", True) is not writes_home, cluster


def test_each_writing_cluster_holds_its_client_certificate_beside_its_prometheus(deployed: Deployed) -> None:
    secrets = [
        s
        for s in deployed.objects("Secret")
        if s["metadata"]["name"] == monitoring.REMOTE_WRITE_SECRET
        and s["metadata"]["namespace"] == monitoring.MONITORING_NAMESPACE
    ]
    writers = [c for c, s in _prometheus_specs(deployed).items() if "remoteWrite" in s]
    assert len(secrets) == len(writers)
    for secret in secrets:
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["stringData"]) == {contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE}


def test_client_certificates_serve_client_auth_only_and_the_receivers_names_its_load_balancer(
    deployed: Deployed,
) -> None:
    signed = {r.name: r.inputs for r in deployed.resources if r.type == SIGNED_CERT}
    clients = {n: i for n, i in signed.items() if "client_auth" in i["allowedUses"]}
    writers = [c for c, s in _prometheus_specs(deployed).items() if "remoteWrite" in s]
    assert len([n for n in clients if "remote-write" in n]) == len(writers)  # the others: edges' (front_door_tls)
    assert all("server_auth" not in i["allowedUses"] for i in clients.values())
    receiver_requests = [
        r.inputs for r in deployed.resources if r.type == CERT_REQUEST and "metrics-receiver" in r.name
    ]
    if deployed.metrics_receiver_address is None:
        assert receiver_requests == []
        return
    (request,) = receiver_requests
    host = deployed.metrics_receiver_address.rpartition(":")[0]
    assert host in [*request.get("dnsNames", []), *request.get("ipAddresses", [])]


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("meridian_inference_requests_total", True),
        ("up", True),
        ("DCGM_FI_DEV_GPU_UTIL", True),
        ("slo:sli_error:ratio_rate5m", False),  # the home records it from the raw series itself
        ("node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate", False),
        ("ALERTS", False),
        ("ALERTS_FOR_STATE", False),
    ],
)
def test_only_raw_series_are_sent_home(name: str, sent: bool) -> None:
    """Prometheus anchors a relabeling regex at both ends, as fullmatch does."""
    assert (re.fullmatch(monitoring.REMOTE_WRITE_DROPPED, name) is None) is sent


def test_the_prometheus_fields_we_set_pass_the_operators_schema_at_the_pinned_version(deployed: Deployed) -> None:
    for cluster, spec in _prometheus_specs(deployed).items():
        fields = {k: spec[k] for k in ("enableRemoteWriteReceiver", "remoteWrite") if k in spec}
        prometheus = {
            "apiVersion": monitoring.MONITORING_API,
            "kind": "Prometheus",
            "metadata": {"name": cluster},
            "spec": fields,
        }
        custom_resources.validate(prometheus)
