"""Where a Kubernetes object sits: its name, labels, namespace and cluster; label selectors; exempt namespaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource

from ..config_schema import string_list
from ..props import dig, items, mapping


def name_of(props: Mapping[str, Any], logical_name: str) -> str:
    """The object's `metadata.name`, else the logical name Pulumi auto-names it from."""
    return str(dig(props, "metadata", "name") or logical_name)


def labels_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "metadata", "labels"))


def namespace_of(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "namespace") or "default")


def cluster_of(resource: PolicyResource) -> str:
    """Which cluster a Kubernetes object lives in: its explicit provider (one per cluster)."""
    return resource.provider.urn if resource.provider else ""


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label set."""
    for key, value in mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in items(selector.get("matchExpressions")):
        expression = mapping(expression)
        key, operator = str(expression.get("key")), expression.get("operator")
        values = set(items(expression.get("values")))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


EXEMPT_NAMESPACES_SCHEMA = PolicyConfigSchema(
    properties={
        "exemptNamespaces": string_list(
            [], "namespaces of privileged cluster add-ons (a GPU device plugin) this rule does not apply to"
        )
    }
)
