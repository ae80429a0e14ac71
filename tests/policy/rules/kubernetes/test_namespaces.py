"""Namespaces: Pod Security restricted and default-deny ingress."""

from __future__ import annotations

from policy.rules.kubernetes.namespaces import DEFAULT_DENY_INGRESS, POD_SECURITY_RESTRICTED
from tests.policy.checks import K8S, assert_complies, assert_violates, check, namespaced, provider, resource

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def namespace(level: str | None, name: str = "meridian-inference", cluster=K8S):
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return resource(NAMESPACE, f"{name}-{cluster.name}", cluster, metadata={"name": name, "labels": labels})


def deny_all(namespace_name: str = "meridian-inference", cluster=K8S):
    spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
    return namespaced(
        NETWORK_POLICY, "default-deny", namespace_name, cluster, logical_name=f"deny-{cluster.name}", spec=spec
    )


def test_a_restricted_namespace_complies() -> None:
    assert_complies(POD_SECURITY_RESTRICTED, namespace("restricted"))


def test_a_baseline_namespace_violates() -> None:
    assert_violates(POD_SECURITY_RESTRICTED, namespace("baseline"), containing="'baseline'")


def test_an_exempt_add_on_namespace_is_not_applicable() -> None:
    report = check(
        POD_SECURITY_RESTRICTED, namespace("privileged", "gpu-operator"), config={"exemptNamespaces": ["gpu-operator"]}
    )
    assert not report.violations and report.not_applicable


def test_a_namespace_with_a_default_deny_policy_complies() -> None:
    assert_complies(DEFAULT_DENY_INGRESS, namespace("restricted"), deny_all())


def test_a_namespace_without_one_violates() -> None:
    assert_violates(DEFAULT_DENY_INGRESS, namespace("restricted"), containing="meridian-inference has no default-deny")


def test_a_policy_that_allows_some_ingress_is_not_a_default_deny() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
    allowing = namespaced(NETWORK_POLICY, "allow", "meridian-inference", spec=spec)
    assert_violates(DEFAULT_DENY_INGRESS, namespace("restricted"), allowing, containing="no default-deny")


def test_each_cluster_needs_its_own_default_deny() -> None:
    eu = provider("kubernetes", "k8s-eu-west-1")
    found = check(
        DEFAULT_DENY_INGRESS, namespace("restricted"), deny_all(), namespace("restricted", cluster=eu)
    ).violations
    assert [v.urn for v in found] == [namespace("restricted", cluster=eu).urn]
