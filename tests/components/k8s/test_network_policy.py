"""Every namespace denies by default; every workload is let through only where it must."""

from __future__ import annotations

from components.k8s.namespace import namespace_name
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import pod_template
from workloads import contract


def _policies(deployed: Deployed, namespace: str) -> list[dict]:
    return [p for p in deployed.objects("NetworkPolicy") if p["metadata"]["namespace"] == namespace]


def test_every_namespace_has_a_default_deny_for_both_directions(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        deny = deployed.named("NetworkPolicy", namespace, "default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_every_workload_pod_is_selected_by_an_allow_policy(deployed: Deployed) -> None:
    for obj in deployed.objects():
        template = pod_template(obj)
        if template is None:
            continue
        labels = template["metadata"]["labels"]
        allows = [
            p
            for p in _policies(deployed, obj["metadata"]["namespace"])
            if p["spec"]["podSelector"]
            and all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
        ]
        assert len(allows) == 1, obj["metadata"]["name"]


def test_only_public_facing_ports_admit_the_internet(deployed: Deployed) -> None:
    # the metrics receiver's too: mutual TLS gates it (components/k8s/metrics_receiver.py)
    public = {contract.HTTP_PORT, contract.SUPERLINK_FLEET_PORT, contract.METRICS_RECEIVER_PORT}
    for policy in deployed.objects("NetworkPolicy"):
        for rule in policy["spec"].get("ingress") or []:
            if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule["from"]):
                assert {p["port"] for p in rule["ports"]} <= public, policy["metadata"]["name"]


def test_supernodes_accept_nothing_but_the_scrape_of_their_metrics(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        policy = deployed.named("NetworkPolicy", namespace_name(region.name), "supernode")
        (rule,) = policy["spec"]["ingress"]
        assert [p["port"] for p in rule["ports"]] == [contract.METRICS_PORT]
        assert rule["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}


def test_gke_pods_may_reach_the_metadata_server_for_workload_identity(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        policy = deployed.named("NetworkPolicy", namespace_name(region.name), "server")
        cidrs = {peer.get("ipBlock", {}).get("cidr") for rule in policy["spec"]["egress"] for peer in rule["to"]}
        assert ("169.254.169.254/32" in cidrs) == (region.cloud == "gcp")
