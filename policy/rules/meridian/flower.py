"""Flower: the SuperLink and SuperNodes always speak TLS; the control API never leaves its namespace.

In Flower 1.42 the control API (`flwr run`) has no authentication, so whoever reaches its
port can start runs: no LoadBalancer, NodePort, external IP or Ingress may lead to it, and
no NetworkPolicy may admit it from outside the namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ..decorators import MANDATORY, resource_rule, stack_rule
from ..kubernetes.metadata import cluster_of, name_of, namespace_of
from ..kubernetes.pod_specs import WORKLOAD_TYPES, container_name, containers, pod_spec
from ..props import dig, items, mapping
from ..stack import of_types

SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
# Flags each Flower process must (and must not) carry.
SUPERLINK_TLS_FLAGS = ("--ssl-certfile", "--ssl-keyfile", "--ssl-ca-certfile")
SUPERNODE_TLS_FLAGS = ("--root-certificates",)
INSECURE_FLAG = "--insecure"
CONTROL_PORT_SCHEMA = PolicyConfigSchema(
    properties={
        # workloads/contract.py SUPERLINK_CONTROL_PORT (Flower's default control port).
        "controlPort": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 9093}
    }
)


def command_line(container: Mapping[str, Any]) -> list[str]:
    return [str(part) for part in [*items(container.get("command")), *items(container.get("args"))]]


def _has_flag(line: list[str], flag: str) -> bool:
    return any(part == flag or part.startswith(f"{flag}=") for part in line)


@resource_rule("meridian-flower-tls", Severity.CRITICAL, MANDATORY, types=WORKLOAD_TYPES)
def FLOWER_TLS(args: ResourceValidationArgs) -> Iterator[str]:
    """The Flower SuperLink and SuperNodes never run --insecure: TLS certificates are always configured."""
    for container in containers(pod_spec(args.resource_type, args.props)):
        line = command_line(container)
        text = " ".join(line)
        for program, flags in (("flower-superlink", SUPERLINK_TLS_FLAGS), ("flower-supernode", SUPERNODE_TLS_FLAGS)):
            if program not in text:
                continue
            if _has_flag(line, INSECURE_FLAG):
                yield f"container {container_name(container)}: {program} runs with --insecure"
            missing = [f for f in flags if not _has_flag(line, f)]
            if missing:
                yield f"container {container_name(container)}: {program} lacks {', '.join(missing)}"


def _flower_namespaces(args: StackValidationArgs) -> set[tuple[str, str]]:
    return {
        (cluster_of(w), namespace_of(w.props))
        for w in of_types(args, *WORKLOAD_TYPES)
        if any("flower-superlink" in " ".join(command_line(c)) for c in containers(pod_spec(w.resource_type, w.props)))
    }


def _exposes(port: Mapping[str, Any], control_port: int) -> bool:
    return control_port in (port.get("port"), port.get("targetPort"))


def _service_problems(service: PolicyResource, control_port: int) -> Iterator[str]:
    spec = mapping(service.props.get("spec"))
    ports = [mapping(p) for p in items(spec.get("ports"))]
    if not any(_exposes(p, control_port) for p in ports):
        return
    if spec.get("type") in ("LoadBalancer", "NodePort"):
        yield f"Service {service.name} exposes the control port {control_port} as {spec.get('type')}"
    if items(spec.get("externalIPs")):
        yield f"Service {service.name} exposes the control port {control_port} on external IPs"


def _ingress_problems(args: StackValidationArgs, ingress: PolicyResource, control_port: int) -> Iterator[str]:
    control_services = {
        name_of(s.props, s.name)
        for s in of_types(args, SERVICE)
        if any(_exposes(mapping(p), control_port) for p in items(dig(s.props, "spec", "ports")))
    }
    backends = [dig(ingress.props, "spec", "defaultBackend", "service")]
    for rule in items(dig(ingress.props, "spec", "rules")):
        backends += [dig(path, "backend", "service") for path in items(dig(rule, "http", "paths"))]
    for backend in backends:
        backend = mapping(backend)
        if dig(backend, "port", "number") == control_port or (
            backend.get("name") in control_services and dig(backend, "port", "number") is None
        ):
            yield f"Ingress {ingress.name} routes to the control port {control_port}"


def _admits_from_outside(rule: Mapping[str, Any], control_port: int) -> bool:
    ports = [mapping(p) for p in items(rule.get("ports"))]
    if ports and not any(p.get("port") in (control_port, None) for p in ports):
        return False
    sources = [mapping(s) for s in items(rule.get("from"))]
    # No `from` admits every source; an ipBlock or namespaceSelector admits other namespaces.
    return not sources or any("ipBlock" in s or "namespaceSelector" in s for s in sources)


@stack_rule("meridian-flower-control-api-private", Severity.CRITICAL, MANDATORY, config_schema=CONTROL_PORT_SCHEMA)
def CONTROL_API_PRIVATE(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """The Flower control API is reachable only from inside its namespace: never public."""
    control_port = int(args.get_config()["controlPort"])
    for service in of_types(args, SERVICE):
        for message in _service_problems(service, control_port):
            yield message, service.urn
    for ingress in of_types(args, INGRESS):
        for message in _ingress_problems(args, ingress, control_port):
            yield message, ingress.urn
    flower = _flower_namespaces(args)
    for policy in of_types(args, NETWORK_POLICY):
        if (cluster_of(policy), namespace_of(policy.props)) not in flower:
            continue
        if any(_admits_from_outside(mapping(r), control_port) for r in items(dig(policy.props, "spec", "ingress"))):
            yield (
                (
                    f"NetworkPolicy {policy.name} admits the control port {control_port} from outside "
                    f"namespace {namespace_of(policy.props)}"
                ),
                policy.urn,
            )


POLICIES = [FLOWER_TLS, CONTROL_API_PRIVATE]
