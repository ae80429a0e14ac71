"""Test helpers: build resources the way the engine describes them and run rules offline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import Policy

from policy.harness import Report, Resource, make_urn, run_pack

STACK = "test"


def provider(kind: str, name: str, **props: Any) -> Resource:
    """An explicit provider, e.g. provider("aws", "aws-eu-west-1", region="eu-west-1")."""
    token = f"pulumi:providers:{kind}"
    return Resource(token, name, props, make_urn(STACK, "meridian", [token], name))


AWS_US = provider("aws", "aws-us-east-1", region="us-east-1")
AWS_EU = provider("aws", "aws-eu-west-1", region="eu-west-1")
GCP_EU = provider("gcp", "gcp-europe-west4", region="europe-west4", project="meridian")
K8S = provider("kubernetes", "k8s-us-east-1")


def resource(type_: str, name: str = "subject", provider: Resource | None = None, **props: Any) -> Resource:
    return Resource(type_, name, props, make_urn(STACK, "meridian", [type_], name), provider=provider)


def namespaced(
    type_: str, name: str, namespace: str, cluster: Resource = K8S, *, logical_name: str | None = None, **props: Any
) -> Resource:
    """A Kubernetes object `name` in `namespace` of `cluster` (logical name: `name` unless given)."""
    return resource(type_, logical_name or name, cluster, metadata={"name": name, "namespace": namespace}, **props)


def check(policy: Policy, *resources: Resource, config: Mapping[str, Any] | None = None) -> Report:
    return run_pack([policy], resources, {policy.name: dict(config)} if config else None)


def messages(policy: Policy, *resources: Resource, config: Mapping[str, Any] | None = None) -> list[str]:
    return [v.message for v in check(policy, *resources, config=config).violations]


def assert_violates(
    policy: Policy, *resources: Resource, containing: str, config: Mapping[str, Any] | None = None
) -> None:
    found = messages(policy, *resources, config=config)
    assert any(containing in m for m in found), f"expected a violation containing {containing!r}, got {found}"


def assert_complies(policy: Policy, *resources: Resource, config: Mapping[str, Any] | None = None) -> None:
    report = check(policy, *resources, config=config)
    assert not report.violations, [v.message for v in report.violations]
    assert not report.unknown, [v.message for v in report.unknown]
