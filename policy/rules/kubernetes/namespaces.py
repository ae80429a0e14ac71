"""Namespaces: Pod Security `restricted` enforced, and a default-deny ingress NetworkPolicy in each."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from ..decorators import MANDATORY, resource_rule, stack_rule
from ..props import dig, items, mapping
from ..stack import of_types
from .metadata import EXEMPT_NAMESPACES_SCHEMA, cluster_of, labels_of, name_of, namespace_of
from .pod_specs import WORKLOAD_TYPES

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


@resource_rule(
    "k8s-namespace-pod-security-restricted",
    Severity.HIGH,
    MANDATORY,
    types=[NAMESPACE],
    config_schema=EXEMPT_NAMESPACES_SCHEMA,
)
def POD_SECURITY_RESTRICTED(args: ResourceValidationArgs) -> Iterator[str]:
    """Namespaces enforce the Pod Security `restricted` level."""
    name = name_of(args.props, args.name)
    if name in items(args.get_config().get("exemptNamespaces")):
        args.not_applicable(f"namespace {name} is exempt")
    level = labels_of(args.props).get(ENFORCE_LABEL)
    if level != "restricted":
        yield f"namespace {name}: label {ENFORCE_LABEL} is {level!r}, must be 'restricted'"


def _denies_all_ingress(policy_props: object) -> bool:
    spec = mapping(dig(policy_props, "spec"))
    selects_all = not mapping(spec.get("podSelector")).get("matchLabels") and not mapping(spec.get("podSelector")).get(
        "matchExpressions"
    )
    return selects_all and "Ingress" in items(spec.get("policyTypes")) and not items(spec.get("ingress"))


@stack_rule("k8s-namespace-default-deny", Severity.HIGH, MANDATORY, config_schema=EXEMPT_NAMESPACES_SCHEMA)
def DEFAULT_DENY_INGRESS(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """Every namespace with workloads has a default-deny ingress NetworkPolicy."""
    exempt = set(items(args.get_config().get("exemptNamespaces")))
    # Keyed by cluster too: each cluster has its own namespaces of the same names.
    namespaces: dict[tuple[str, str], str] = {}
    for ns in of_types(args, NAMESPACE):
        namespaces[cluster_of(ns), name_of(ns.props, ns.name)] = ns.urn
    for workload in of_types(args, *WORKLOAD_TYPES):
        namespaces.setdefault((cluster_of(workload), namespace_of(workload.props)), workload.urn)
    denied = {
        (cluster_of(p), namespace_of(p.props)) for p in of_types(args, NETWORK_POLICY) if _denies_all_ingress(p.props)
    }
    for (cluster, name), urn in sorted(namespaces.items()):
        if (cluster, name) not in denied and name not in exempt:
            yield f"namespace {name} has no default-deny ingress NetworkPolicy (podSelector {{}})", urn


POLICIES = [POD_SECURITY_RESTRICTED, DEFAULT_DENY_INGRESS]
