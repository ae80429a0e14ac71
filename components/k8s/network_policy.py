"""NetworkPolicies: a namespace denies everything, then each workload names what it needs.

NetworkPolicy matches addresses and ports, not host names, so traffic to the clouds' HTTPS
APIs (the data bucket, the model registry behind its CDN) is allowed as TCP 443 to public
addresses; what a pod may read there is limited by its cloud identity, not by the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.config import Auth
from components.k8s.labels import metadata

NetworkPolicyPeer = k8s.networking.v1.NetworkPolicyPeerArgs
PUBLIC_INTERNET = "0.0.0.0/0"
# Cluster-internal and link-local ranges are not "the internet": pods reach each other only
# through rules that select them.
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]
HTTPS_PORT = 443
DNS_PORT = 53


def anywhere() -> NetworkPolicyPeer:
    return NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=PUBLIC_INTERNET))


def public_internet() -> NetworkPolicyPeer:
    return NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=PUBLIC_INTERNET, except_=PRIVATE_RANGES))


def pods(selector: Mapping[str, str]) -> NetworkPolicyPeer:
    """Pods of this namespace (a podSelector without namespaceSelector never leaves it)."""
    return NetworkPolicyPeer(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)))


def this_namespace() -> NetworkPolicyPeer:
    return NetworkPolicyPeer(pod_selector=k8s.meta.v1.LabelSelectorArgs())


@dataclass(frozen=True)
class Rule:
    """Traffic from (ingress) or to (egress) `peers` on TCP `ports`."""

    peers: Sequence[NetworkPolicyPeer]
    ports: Sequence[int]
    protocols: Sequence[str] = ("TCP",)

    def _ports(self) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
        return [
            k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol=protocol)
            for port in self.ports
            for protocol in self.protocols
        ]

    def ingress(self) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
        return k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=list(self.peers), ports=self._ports())

    def egress(self) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
        return k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=list(self.peers), ports=self._ports())


def dns_rule() -> Rule:
    return Rule(
        peers=[
            NetworkPolicyPeer(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                ),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[DNS_PORT],
        protocols=("UDP", "TCP"),
    )


def cloud_identity_rules(cloud: Cloud) -> list[Rule]:
    """GKE Workload Identity answers on the node's metadata server (169.254.169.254:80,
    served on 988 by gke-metadata-server), which the public-internet rule excludes. EKS IRSA
    exchanges a projected token with STS over public HTTPS and needs nothing more."""
    if cloud is not Cloud.GCP:
        return []
    return [
        Rule(
            peers=[
                NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr="169.254.169.254/32")),
                NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr="169.254.169.252/32")),
            ],
            ports=[80, 988],
        )
    ]


def cloud_apis(cloud: Cloud) -> list[Rule]:
    """The clouds' HTTPS APIs (buckets, the registry's CDN) and what the pod's cloud identity
    needs to reach them."""
    return [Rule([public_internet()], [HTTPS_PORT]), *cloud_identity_rules(cloud)]


def oidc_issuer(auth: Auth) -> list[Rule]:
    """The OIDC issuer's signing keys where they sit on a private network (`auth.oidc.jwksCidrs`);
    a public issuer is reached through `cloud_apis` already."""
    cidrs = auth.oidc.jwks_cidrs if auth.oidc else []
    if not cidrs:
        return []
    return [
        Rule([NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)) for cidr in cidrs], [HTTPS_PORT])
    ]


def default_deny(
    resource_name: str,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Selects every pod of the namespace for both directions and allows nothing."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=metadata("default-deny", namespace, labels),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(),
            policy_types=["Ingress", "Egress"],
        ),
        opts=opts,
    )


def allow(
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    selector: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    ingress: Sequence[Rule] = (),
    egress: Sequence[Rule] = (),
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """What the pods matching `selector` may receive and send; DNS egress is always allowed."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=metadata(name, namespace, labels),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            policy_types=["Ingress", "Egress"],
            ingress=[rule.ingress() for rule in ingress] or None,
            egress=[rule.egress() for rule in [dns_rule(), *egress]],
        ),
        opts=opts,
    )
