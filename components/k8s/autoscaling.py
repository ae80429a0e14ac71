"""Request-driven autoscaling: one KEDA ScaledObject per serving Deployment (the regional
inference server, every edge site), so the replica count follows the load that matters.

CPU alone is the wrong signal for a server that batches on a GPU: the GPU saturates, requests
queue and the p99 climbs while the CPU idles. Each ScaledObject therefore has three triggers,
and KEDA's HPA takes the largest replica count any of them asks for:
- in-flight requests per replica (Prometheus, `AverageValue`): `meridian_inference_in_flight`
  (accepted, not yet answered) summed over the Deployment's pods, divided by the target;
- p99 latency (Prometheus, `Value`): the Deployment's p99 over RATE_WINDOW against the target;
  `Value` scales by current x p99 / target;
- CPU utilisation (the `cpu` trigger, `Utilization`): the floor while Prometheus has nothing to
  say, read from the resource metrics API (metrics-server: an EKS add-on,
  components/aws/addons.py; built into GKE; a prerequisite of an existing cluster).

The Prometheus series are picked by the scrape target labels of workloads/contract.py:
`region` and `app` (`server` or `edge`), and `site` for an edge.

When Prometheus is unreachable (FAILURE_THRESHOLD failed polls in a row), KEDA's `fallback`
with `currentReplicasIfHigher` holds the current count (never below minReplicaCount): without
the load we do not shrink, and the CPU trigger, which does not need Prometheus, may still scale
up. Scaling down waits `inference.scaleDownStabilizationSeconds` of lower recommendations and
then removes at most one pod per SCALE_DOWN_PERIOD_SECONDS (a GPU server takes minutes to come
back: its node, its model); scaling up keeps the HPA's defaults (fast).

Each ScaledObject names its HPA after the Deployment and may adopt an HPA of that name
(`transfer-hpa-ownership`): the servers' CPU-only HPA was named so, and in the update that
replaces it the ScaledObject is created before the old HPA is deleted; without the transfer,
KEDA's admission webhook refuses a second autoscaler for the Deployment and the update can
never finish. (Deleting the adopted HPA at the end of that update costs one reconcile: KEDA
owns it and creates it again.)

Sources (read 2026-11-30): kedacore/keda-docs content/docs/2.18/reference/scaledobject-spec.md
(fallback: "supported for all triggers of both Value and AverageValue metric types, except CPU
& memory triggers"; behaviours) and the ScaledObject CRD of kedacore/charts keda 2.20.2
(tests/components/k8s/keda_crds.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import EdgeSite
from components.k8s.gpu import has_gpus
from components.k8s.labels import metadata
from components.k8s.monitoring import PROMETHEUS_URL
from components.k8s.target import Target
from workloads.contract import MetricsApp

API_VERSION = "keda.sh/v1alpha1"
# keda apis/keda/v1alpha1/scaledobject_types.go: adopt an existing HPA named in
# advanced.horizontalPodAutoscalerConfig.name instead of refusing the ScaledObject
TRANSFER_HPA_OWNERSHIP = {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
KIND = "ScaledObject"
POLLING_INTERVAL_SECONDS = 15  # as often as the HPA itself syncs
FAILURE_THRESHOLD = 3  # failed Prometheus polls before the fallback applies
RATE_WINDOW = "2m"  # four scrapes at kube-prometheus-stack's 30 s interval
SCALE_DOWN_PERIOD_SECONDS = 60
IN_FLIGHT = "meridian_inference_in_flight"
DURATION_BUCKETS = "meridian_inference_request_duration_seconds_bucket"


@dataclass(frozen=True)
class ScalingPolicy:
    """What one ScaledObject scales on: its bounds, its targets and whose series it reads."""

    min_replicas: int
    max_replicas: int
    in_flight_per_replica: int
    p99_ms: float
    series: dict[str, str]  # target labels that pick the Deployment's series

    @property
    def selector(self) -> str:
        return ",".join(f'{key}="{value}"' for key, value in sorted(self.series.items()))

    @property
    def in_flight_query(self) -> str:
        return f"sum({IN_FLIGHT}{{{self.selector}}}) or vector(0)"

    @property
    def p99_query(self) -> str:
        # No request in the window makes histogram_quantile NaN: `>= 0` drops it, and the
        # trigger reads 0 (no pressure) rather than an error that would trip the fallback.
        quantile = f"histogram_quantile(0.99, sum by (le) (rate({DURATION_BUCKETS}{{{self.selector}}}[{RATE_WINDOW}])))"
        return f"({quantile} >= 0) or vector(0)"


def gpu_ceiling(target: Target) -> int | None:
    """GPU servers the region can place at most (one GPU each): its GPU pool's max nodes x
    GPUs per node (Karpenter's NodePool limit, the GKE pool's max). None without GPUs."""
    region = target.region
    return region.gpu.max * region.gpus_per_node if has_gpus(region) else None


def server_policy(target: Target) -> ScalingPolicy:
    """The regional server: inference.minReplicas..maxReplicas, the max capped at the region's
    GPU ceiling (a replica above it would only wait Pending), never below minReplicas."""
    inference = target.config.inference
    ceiling = gpu_ceiling(target)
    high = inference.max_replicas if ceiling is None else min(inference.max_replicas, ceiling)
    return ScalingPolicy(
        min_replicas=inference.min_replicas,
        max_replicas=max(inference.min_replicas, high),
        in_flight_per_replica=inference.target_in_flight_per_replica,
        p99_ms=inference.target_p99_ms,
        series={"region": target.region.name, "app": MetricsApp.SERVER.value},
    )


def edge_policy(target: Target, site: EdgeSite) -> ScalingPolicy:
    """An edge site: one replica per edge node at least (`capacity`, the site's fixed nodes),
    up to `maxReplicas` (default 2 x capacity) on those same nodes."""
    inference = target.config.inference
    return ScalingPolicy(
        min_replicas=site.capacity,
        max_replicas=site.peak_replicas,
        in_flight_per_replica=inference.edge_target_in_flight_per_replica,
        p99_ms=inference.edge_target_p99_ms,
        series={"region": target.region.name, "app": MetricsApp.EDGE.value, "site": site.name},
    )


def _prometheus(name: str, query: str, threshold: str, metric_type: str) -> dict[str, object]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": metric_type,
        "metadata": {"serverAddress": PROMETHEUS_URL, "query": query, "threshold": threshold},
    }


def triggers(policy: ScalingPolicy, cpu_utilization: int) -> list[dict[str, object]]:
    return [
        _prometheus("in-flight", policy.in_flight_query, str(policy.in_flight_per_replica), "AverageValue"),
        _prometheus("p99-latency", policy.p99_query, f"{policy.p99_ms / 1000:g}", "Value"),
        {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": str(cpu_utilization)}},
    ]


def scaled_object(
    resource_name: str,
    target: Target,
    app: str,
    name: str,
    deployment: k8s.apps.v1.Deployment,
    policy: ScalingPolicy,
    *,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    """The ScaledObject `name` that owns `deployment`'s replica count; it waits for
    `depends_on` (KEDA's release, which brings the CRD)."""
    inference = target.config.inference
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=API_VERSION,
        kind=KIND,
        metadata=metadata(name, target.namespace, target.labels(app, "autoscaling"), TRANSFER_HPA_OWNERSHIP),
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
            "pollingInterval": POLLING_INTERVAL_SECONDS,
            "minReplicaCount": policy.min_replicas,
            "maxReplicaCount": policy.max_replicas,
            "fallback": {
                "failureThreshold": FAILURE_THRESHOLD,
                "replicas": policy.min_replicas,
                "behavior": "currentReplicasIfHigher",
            },
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "name": name,
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": inference.scale_down_stabilization_seconds,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": SCALE_DOWN_PERIOD_SECONDS}],
                        }
                    },
                }
            },
            "triggers": triggers(policy, inference.target_cpu_utilization),
        },
        opts=target.opts(parent, depends_on),
    )
