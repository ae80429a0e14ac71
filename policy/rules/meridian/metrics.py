"""Metrics stay inside the cluster: a workload's /metrics port is reached by the cluster's
Prometheus only. Metrics name model versions, traffic splits, queue depths and per-region
training figures; served publicly they are reconnaissance, and a scrape endpoint is no place
for the internet's load. So no LoadBalancer, NodePort, external IP or Ingress leads to a
metrics port, and no NetworkPolicy admits it from addresses (an ipBlock, or no `from` at all).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import dig, items, mapping

SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
METRICS_PORT_NAME = "metrics"  # the container port name the workloads give their metrics port
METRICS_PORTS_SCHEMA = PolicyConfigSchema(
    properties={
        # workloads/contract.py METRICS_PORT and TRAINER_METRICS_PORT
        "metricsPorts": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 65535},
            "default": [9300, 9400],
        }
    }
)


def _is_metrics(port: Any, metrics_ports: list[int]) -> bool:
    return port in metrics_ports or port == METRICS_PORT_NAME


def _shown(port: Any) -> str:
    """A port as written: the engine sends numbers as floats."""
    return str(int(port)) if isinstance(port, float) else str(port)


def _service_problems(props: Mapping[str, Any], metrics_ports: list[int]) -> Iterator[str]:
    spec = mapping(props.get("spec"))
    exposed = [
        p
        for p in (mapping(p) for p in items(spec.get("ports")))
        if _is_metrics(p.get("port"), metrics_ports) or _is_metrics(p.get("targetPort"), metrics_ports)
    ]
    for port in exposed:
        shown = _shown(port.get("targetPort") or port.get("port"))
        if spec.get("type") in ("LoadBalancer", "NodePort"):
            yield f"exposes the metrics port {shown} as {spec.get('type')}"
        if items(spec.get("externalIPs")):
            yield f"exposes the metrics port {shown} on external IPs"


def _ingress_problems(props: Mapping[str, Any], metrics_ports: list[int]) -> Iterator[str]:
    backends = [dig(props, "spec", "defaultBackend", "service")]
    for rule in items(dig(props, "spec", "rules")):
        backends += [dig(path, "backend", "service") for path in items(dig(rule, "http", "paths"))]
    for backend in backends:
        port = mapping(dig(backend, "port"))
        if _is_metrics(port.get("number"), metrics_ports) or _is_metrics(port.get("name"), metrics_ports):
            yield "routes to a metrics port"


def _network_policy_problems(props: Mapping[str, Any], metrics_ports: list[int]) -> Iterator[str]:
    for rule in (mapping(r) for r in items(dig(props, "spec", "ingress"))):
        ports = [mapping(p).get("port") for p in items(rule.get("ports"))]
        covered = [p for p in ports if _is_metrics(p, metrics_ports)] if ports else metrics_ports
        if not covered:
            continue
        sources = [mapping(s) for s in items(rule.get("from"))]
        if not sources or any("ipBlock" in s for s in sources):
            yield f"admits the metrics port {_shown(covered[0])} from {'any source' if not sources else 'addresses (ipBlock)'}"


@resource_rule(
    "meridian-metrics-private",
    Severity.HIGH,
    MANDATORY,
    types=[SERVICE, INGRESS, NETWORK_POLICY],
    config_schema=METRICS_PORTS_SCHEMA,
)
def METRICS_PRIVATE(args: ResourceValidationArgs) -> Iterator[str]:
    """Metrics ports are reachable from inside the cluster only: no public Service, Ingress or ipBlock leads to them."""
    metrics_ports = [int(p) for p in items(args.get_config()["metricsPorts"])]
    check = {SERVICE: _service_problems, INGRESS: _ingress_problems, NETWORK_POLICY: _network_policy_problems}
    kind = args.resource_type.rsplit(":", 1)[1]
    for message in check[args.resource_type](args.props, metrics_ports):
        yield f"{kind} {args.name} {message}"


POLICIES = [METRICS_PRIVATE]
