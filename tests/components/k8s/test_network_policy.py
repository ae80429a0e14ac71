"""Every namespace denies by default; every workload is let through only where it must."""

from __future__ import annotations

from components.k8s.monitoring import MONITORING_NAMESPACE, PROMETHEUS_POD_LABELS
from components.k8s.namespace import namespace_name
from components.k8s.serving import CANARY_APP, EDGE_APP, SERVER_APP
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


ANYWHERE = {"ipBlock": {"cidr": "0.0.0.0/0"}}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
    "podSelector": {"matchLabels": PROMETHEUS_POD_LABELS},
}


def _pods(app: str, region: str) -> dict:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": app, "meridian.io/region": region}}}


def _by_port(rules: list[dict], direction: str) -> dict[int, list[dict]]:
    """Port -> the peers admitted there (each rule names its peers and ports)."""
    out: dict[int, list[dict]] = {}
    for rule in rules:
        for port in rule["ports"]:
            out.setdefault(port["port"], []).extend(rule[direction])
    return out


def test_servers_and_edges_admit_exactly_these_peers_on_each_port(deployed: Deployed) -> None:
    """Public port: anyone (a credential is asked for there); escalation port: the region's
    edges; admin port: its canary controller; metrics: Prometheus. Nothing else comes in."""
    analysed = deployed.config.inference.canary.analysis is not None
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        admin = {contract.ADMIN_PORT: [_pods(CANARY_APP, region.name)]} if analysed else {}
        server = deployed.named("NetworkPolicy", namespace, SERVER_APP)["spec"]
        escalation = {contract.ESCALATION_PORT: [_pods(EDGE_APP, region.name)]} if region.edge_sites else {}
        assert _by_port(server["ingress"], "from") == {
            contract.HTTP_PORT: [ANYWHERE],
            **escalation,
            **admin,
            contract.METRICS_PORT: [PROMETHEUS],
        }
        if not region.edge_sites:
            continue
        edge = deployed.named("NetworkPolicy", namespace, EDGE_APP)["spec"]
        assert _by_port(edge["ingress"], "from") == {
            contract.HTTP_PORT: [ANYWHERE],
            **admin,
            contract.METRICS_PORT: [PROMETHEUS],
        }
        # out to the region's servers on the escalation port alone, never their public port
        to_servers = _by_port([r for r in edge["egress"] if _pods(SERVER_APP, region.name) in r["to"]], "to")
        assert list(to_servers) == [contract.ESCALATION_PORT]


def test_servers_and_edges_reach_a_private_oidc_issuer_only_where_the_stack_names_it(deployed: Deployed) -> None:
    """Public issuers come through the public-internet rule; a private one (onprem's plant SSO)
    only through `auth.oidc.jwksCidrs`, on 443."""
    oidc = deployed.config.auth.oidc
    named = set(oidc.jwks_cidrs) if oidc else set()
    for region in deployed.config.regions:
        for app in (SERVER_APP, EDGE_APP) if region.edge_sites else (SERVER_APP,):
            spec = deployed.named("NetworkPolicy", namespace_name(region.name), app)["spec"]
            private = {
                peer["ipBlock"]["cidr"]: {p["port"] for p in rule["ports"]}
                for rule in spec["egress"]
                for peer in rule["to"]
                if peer.get("ipBlock", {}).get("cidr") in named
            }
            assert private == {cidr: {443} for cidr in named}, (region.name, app)
