"""What every rule shares: rule constructors, property access, Kubernetes pod specs, references.

Rules see props the way the policy server hands them over: read-only Mappings (a property
that is unknown during preview raises UnknownValueError on access, which the server turns
into an advisory "can't run during preview" note), numbers as floats, camelCase keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str | None]]]


def resource_rule(
    name: str,
    description: str,
    *,
    severity: Severity,
    enforcement: EnforcementLevel,
    types: Iterable[str],
    check: ResourceCheck,
    config_schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A rule over single resources of `types`: `check` yields one message per violation."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in wanted:
            return
        for message in check(args):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        severity=severity,
        config_schema=config_schema,
    )


def stack_rule(
    name: str,
    description: str,
    *,
    severity: Severity,
    enforcement: EnforcementLevel,
    check: StackCheck,
    config_schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A rule over the whole stack: `check` yields (message, urn of the offender or None)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message, urn in check(args):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        severity=severity,
        config_schema=config_schema,
    )


# -- property access ----------------------------------------------------------------------


def dig(value: Any, *path: str | int) -> Any:
    """`dig(props, "vpcConfig", "endpointPublicAccess")`; None where any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def items(value: Any) -> list[Any]:
    """A list input as a list: None is empty, a lone value is a list of one."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def show(value: Any) -> str:
    """A value for a message: the engine's floats print as the integers they are (443, not 443.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def region_of(provider_props: Mapping[str, Any] | None, props: Mapping[str, Any]) -> str | None:
    """Where a resource lives: its own `region`/`location`, else its provider's region."""
    for key in ("region", "location"):
        value = props.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    if provider_props is not None:
        value = provider_props.get("region")
        if isinstance(value, str) and value:
            return value.lower()
    return None


def resource_region(resource: PolicyResource) -> str | None:
    return region_of(resource.provider.props if resource.provider else None, resource.props)


def of_types(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


def refers_to(value: Any, resource: PolicyResource, *keys: str) -> bool:
    """Whether an input (a bucket name, an id, an ARN) points at `resource`.

    During a real run the engine resolves references to the target's physical name or id;
    offline (mocks) and in auto-named cases the logical name stands in for it.
    """
    if not isinstance(value, str) or not value:
        return False
    candidates = {resource.name}
    for key in ("id", "name", "arn", *keys):
        found = resource.props.get(key) if key in resource.props else None
        if isinstance(found, str) and found:
            candidates.add(found)
    # GCP references are self links or ids that end in the target's name; an auto-named
    # physical name is the logical name plus a random hex suffix.
    return (
        value in candidates
        or any(value.endswith(f"/{c}") for c in candidates)
        or any(re.fullmatch(rf"{re.escape(c)}-[0-9a-f]{{7,16}}", value) for c in candidates)
    )


# -- Kubernetes ---------------------------------------------------------------------------

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_TYPES = frozenset(_POD_SPEC_PATHS)
LONG_RUNNING_TYPES = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:ReplicaSet",
    }
)


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    path = _POD_SPEC_PATHS.get(resource_type)
    return mapping(dig(props, *path)) if path else {}


def containers(spec: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    """The pod's containers (and init containers, unless `init=False`)."""
    found = [mapping(c) for c in items(spec.get("containers"))]
    return found + init_containers(spec) if init else found


def init_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [mapping(c) for c in items(spec.get("initContainers"))]


def container_name(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "<unnamed>")


def labels_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "metadata", "labels"))


def namespace_of(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "namespace") or "default")


def cluster_of(resource: PolicyResource) -> str:
    """Which cluster a Kubernetes object lives in: its explicit provider (one per cluster)."""
    return resource.provider.urn if resource.provider else ""


EXEMPT_NAMESPACES_SCHEMA = PolicyConfigSchema(
    properties={
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "namespaces of privileged cluster add-ons (a GPU device plugin) this rule does not apply to",
        }
    }
)


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
