"""Pod hardening, container by container: what Pod Security `restricted` and the kubelet need.

Cluster add-ons that must run as root (a GPU device plugin writing the kubelet's socket) live
in namespaces named in the `exemptNamespaces` config; everything else is held to every rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import items, mapping
from .metadata import EXEMPT_NAMESPACES_SCHEMA, namespace_of
from .pod_specs import LONG_RUNNING_TYPES, WORKLOAD_TYPES, container_name, containers, init_containers, pod_spec

ALLOWED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)  # the only one Pod Security `restricted` allows

# A container check gets (pod spec, container, whether it is an init container).
ContainerCheck = Callable[[Mapping[str, Any], Mapping[str, Any], bool], Iterator[str]]


def pod_rule(
    name: str, severity: Severity, *, types: frozenset[str] = WORKLOAD_TYPES
) -> Callable[[ContainerCheck], ResourceValidationPolicy]:
    """A mandatory rule asked of every container of a pod, outside the exempt namespaces."""

    def declare(check: ContainerCheck) -> ResourceValidationPolicy:
        @functools.wraps(check)  # the docstring is the rule's description
        def each_container(args: ResourceValidationArgs) -> Iterator[str]:
            if namespace_of(args.props) in items(args.get_config().get("exemptNamespaces")):
                args.not_applicable(f"namespace {namespace_of(args.props)} is exempt")
            spec = pod_spec(args.resource_type, args.props)
            for init, group in ((False, containers(spec, init=False)), (True, init_containers(spec))):
                for container in group:
                    for message in check(spec, container, init):
                        yield f"container {container_name(container)}: {message}"

        return resource_rule(name, severity, MANDATORY, types=types, config_schema=EXEMPT_NAMESPACES_SCHEMA)(
            each_container
        )

    return declare


def _security(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(container.get("securityContext"))


def _effective(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's security setting, falling back to the pod's."""
    own = _security(container).get(key)
    return own if own is not None else mapping(spec.get("securityContext")).get(key)


@pod_rule("k8s-run-as-non-root", Severity.HIGH)
def RUN_AS_NON_ROOT(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Containers run as a non-root user."""
    if _effective(spec, container, "runAsNonRoot") is not True:
        yield "runAsNonRoot must be true (container or pod securityContext)"
    if _effective(spec, container, "runAsUser") == 0:
        yield "runAsUser is 0 (root)"


@pod_rule("k8s-read-only-root-filesystem", Severity.MEDIUM)
def READ_ONLY_ROOT_FILESYSTEM(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Containers have a read-only root filesystem."""
    if _security(container).get("readOnlyRootFilesystem") is not True:
        yield "readOnlyRootFilesystem must be true; mount an emptyDir for scratch space"


@pod_rule("k8s-no-privilege-escalation", Severity.HIGH)
def NO_PRIVILEGE_ESCALATION(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Containers are not privileged and cannot escalate privileges."""
    security = _security(container)
    if security.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation must be false"
    if security.get("privileged") is True:
        yield "privileged is true"


@pod_rule("k8s-capabilities-dropped", Severity.MEDIUM)
def CAPABILITIES_DROPPED(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Containers drop ALL capabilities (NET_BIND_SERVICE may be added back)."""
    capabilities = mapping(_security(container).get("capabilities"))
    if "ALL" not in items(capabilities.get("drop")):
        yield "capabilities.drop must include ALL"
    extra = [str(c) for c in items(capabilities.get("add")) if c not in ALLOWED_ADDED_CAPABILITIES]
    if extra:
        yield f"capabilities.add {extra}: only NET_BIND_SERVICE may be added"


@pod_rule("k8s-requests-and-limits", Severity.MEDIUM)
def RESOURCES_SET(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Containers set CPU and memory requests and limits."""
    resources = mapping(container.get("resources"))
    for kind in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if not mapping(resources.get(kind)).get(r)]
        if missing:
            yield f"resources.{kind} lacks {', '.join(missing)}"


@pod_rule("k8s-probes", Severity.MEDIUM, types=LONG_RUNNING_TYPES)
def PROBES_SET(spec: Mapping[str, Any], container: Mapping[str, Any], init: bool) -> Iterator[str]:
    """Long-running containers have liveness and readiness probes."""
    if init:
        return  # init containers run to completion; probes do not apply
    for probe in ("livenessProbe", "readinessProbe"):
        if not container.get(probe):
            yield f"no {probe}"


POLICIES = [
    RUN_AS_NON_ROOT,
    READ_ONLY_ROOT_FILESYSTEM,
    NO_PRIVILEGE_ESCALATION,
    CAPABILITIES_DROPPED,
    RESOURCES_SET,
    PROBES_SET,
]
