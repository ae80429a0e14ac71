"""Pod hardening, container by container: what Pod Security `restricted` and the kubelet need.

Cluster add-ons that must run as root (a GPU device plugin writing the kubelet's socket) live
in namespaces named in the `exemptNamespaces` config; everything else is held to every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import (
    EXEMPT_NAMESPACES_SCHEMA,
    LONG_RUNNING_TYPES,
    MANDATORY,
    WORKLOAD_TYPES,
    container_name,
    containers,
    init_containers,
    items,
    mapping,
    namespace_of,
    pod_spec,
    resource_rule,
)

ALLOWED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)  # the only one Pod Security `restricted` allows

# A container check gets (pod spec, container, whether it is an init container).
ContainerCheck = Callable[[Mapping[str, Any], Mapping[str, Any], bool], Iterator[str]]


def pod_rule(
    name: str, description: str, severity: Severity, check: ContainerCheck, *, types: frozenset[str] = WORKLOAD_TYPES
):
    def run(args: ResourceValidationArgs) -> Iterator[str]:
        if namespace_of(args.props) in items(args.get_config().get("exemptNamespaces")):
            args.not_applicable(f"namespace {namespace_of(args.props)} is exempt")
        spec = pod_spec(args.resource_type, args.props)
        for init, group in ((False, containers(spec, init=False)), (True, init_containers(spec))):
            for container in group:
                for message in check(spec, container, init):
                    yield f"container {container_name(container)}: {message}"

    return resource_rule(
        name,
        description,
        severity=severity,
        enforcement=MANDATORY,
        types=types,
        check=run,
        config_schema=EXEMPT_NAMESPACES_SCHEMA,
    )


def _security(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(container.get("securityContext"))


def _effective(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's security setting, falling back to the pod's."""
    own = _security(container).get(key)
    return own if own is not None else mapping(spec.get("securityContext")).get(key)


def _non_root(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    if _effective(spec, container, "runAsNonRoot") is not True:
        yield "runAsNonRoot must be true (container or pod securityContext)"
    if _effective(spec, container, "runAsUser") == 0:
        yield "runAsUser is 0 (root)"


def _read_only_root(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    if _security(container).get("readOnlyRootFilesystem") is not True:
        yield "readOnlyRootFilesystem must be true; mount an emptyDir for scratch space"


def _no_escalation(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    security = _security(container)
    if security.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation must be false"
    if security.get("privileged") is True:
        yield "privileged is true"


def _capabilities(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    capabilities = mapping(_security(container).get("capabilities"))
    if "ALL" not in items(capabilities.get("drop")):
        yield "capabilities.drop must include ALL"
    extra = [str(c) for c in items(capabilities.get("add")) if c not in ALLOWED_ADDED_CAPABILITIES]
    if extra:
        yield f"capabilities.add {extra}: only NET_BIND_SERVICE may be added"


def _resources(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    resources = mapping(container.get("resources"))
    for kind in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if not mapping(resources.get(kind)).get(r)]
        if missing:
            yield f"resources.{kind} lacks {', '.join(missing)}"


def _probes(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    if init:
        return  # init containers run to completion; probes do not apply
    for probe in ("livenessProbe", "readinessProbe"):
        if not container.get(probe):
            yield f"no {probe}"


RUN_AS_NON_ROOT = pod_rule("k8s-run-as-non-root", "Containers run as a non-root user.", Severity.HIGH, _non_root)
READ_ONLY_ROOT_FILESYSTEM = pod_rule(
    "k8s-read-only-root-filesystem", "Containers have a read-only root filesystem.", Severity.MEDIUM, _read_only_root
)
NO_PRIVILEGE_ESCALATION = pod_rule(
    "k8s-no-privilege-escalation",
    "Containers are not privileged and cannot escalate privileges.",
    Severity.HIGH,
    _no_escalation,
)
CAPABILITIES_DROPPED = pod_rule(
    "k8s-capabilities-dropped",
    "Containers drop ALL capabilities (NET_BIND_SERVICE may be added back).",
    Severity.MEDIUM,
    _capabilities,
)
RESOURCES_SET = pod_rule(
    "k8s-requests-and-limits",
    "Containers set CPU and memory requests and limits.",
    Severity.MEDIUM,
    _resources,
)
PROBES_SET = pod_rule(
    "k8s-probes",
    "Long-running containers have liveness and readiness probes.",
    Severity.MEDIUM,
    _probes,
    types=LONG_RUNNING_TYPES,
)

POLICIES = [
    RUN_AS_NON_ROOT,
    READ_ONLY_ROOT_FILESYSTEM,
    NO_PRIVILEGE_ESCALATION,
    CAPABILITIES_DROPPED,
    RESOURCES_SET,
    PROBES_SET,
]
