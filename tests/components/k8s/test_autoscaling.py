"""Autoscaling on the load that matters: KEDA, pinned, on every cluster; a ScaledObject for each
region's servers and each edge site, on in-flight requests, p99 latency and CPU, with bounds
from the stack config; no CPU-only HPA left."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.config import ConfigError, load_stack, parse
from components.k8s.clusters import cluster_regions, owns_cluster
from components.k8s.gpu import has_gpus
from components.k8s.keda import (
    CHART,
    CHART_REPO,
    CHART_VERSION,
    CONTROL_PLANE_PORT,
    NAMESPACE,
)
from components.k8s.monitoring import PROMETHEUS_URL
from components.k8s.namespace import namespace_name
from tests.components import custom_resources
from tests.components.k8s.conftest import Deployed

RELEASE = "kubernetes:helm.sh/v3:Release"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def _triggers(scaled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in scaled["spec"]["triggers"]}


def _assert_scales_on_the_load(scaled: dict[str, Any], deployment: str, series: dict[str, str]) -> None:
    """The three triggers, each Prometheus query naming exactly the Deployment's series."""
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}
    triggers = _triggers(scaled)
    assert {name: (t["type"], t["metricType"]) for name, t in triggers.items()} == {
        "in-flight": ("prometheus", "AverageValue"),
        "p99-latency": ("prometheus", "Value"),
        "cpu": ("cpu", "Utilization"),
    }
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(series.items()))
    in_flight, p99 = triggers["in-flight"]["metadata"], triggers["p99-latency"]["metadata"]
    assert in_flight["serverAddress"] == p99["serverAddress"] == PROMETHEUS_URL
    assert f"meridian_inference_in_flight{{{selector}}}" in in_flight["query"]
    assert f"meridian_inference_request_duration_seconds_bucket{{{selector}}}" in p99["query"]
    assert p99["query"].startswith("(histogram_quantile(0.99,")


def test_keda_is_a_pinned_release_once_per_cluster_in_its_own_restricted_namespace(deployed: Deployed) -> None:
    config = deployed.config
    releases = {r.provider: r.inputs for r in deployed.resources if r.type == RELEASE and r.inputs["chart"] == CHART}
    provider_of = {  # each region's cluster provider, found through its namespace
        r.inputs["metadata"]["name"]: r.provider for r in deployed.resources if r.type == "kubernetes:core/v1:Namespace"
    }
    owners = [r for r in config.regions if owns_cluster(config, r)]
    assert set(releases) == {provider_of[namespace_name(r.name)] for r in owners}
    assert re.fullmatch(r"\d+\.\d+\.\d+", CHART_VERSION)
    for region in owners:
        inputs = releases[provider_of[namespace_name(region.name)]]
        assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]) == (
            CHART,
            CHART_VERSION,
            {"repo": CHART_REPO},
        )
        assert inputs["namespace"] == NAMESPACE
        values = inputs["values"]
        # It watches the Meridian namespaces on its cluster, and only them.
        watched = {namespace_name(r.name) for r in cluster_regions(config, region)}
        assert set(values["watchNamespace"].split(",")) == watched
        assert values["rbac"]["enabledCustomScaledRefKinds"] is False  # no `*/scale` on every API group
        assert values["permissions"]["operator"]["restrict"]["secret"] is True
        assert values["permissions"]["metricServer"]["restrict"]["secret"] is True
        # Reachable from a private GKE control plane, which opens 443 and 10250 only.
        assert values["service"]["portHttpsTarget"] == values["webhooks"]["port"] == CONTROL_PLANE_PORT == 10250
    namespaces = [n for n in deployed.objects("Namespace") if n["metadata"]["name"] == NAMESPACE]
    assert len(namespaces) == len(owners)
    for namespace in namespaces:
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_regions_sharing_a_cluster_share_one_keda() -> None:
    config = load_stack("local")  # three regions on one kind cluster
    assert [owns_cluster(config, r) for r in config.regions] == [True, False, False]
    assert cluster_regions(config, config.regions[2]) == config.regions
    onprem = load_stack("onprem")  # two clusters, one region each
    assert all(owns_cluster(onprem, r) for r in onprem.regions)


def test_no_stack_registers_a_horizontal_pod_autoscaler(deployed: Deployed) -> None:
    """KEDA creates (and owns) the HPA behind each ScaledObject; one of ours would fight it."""
    assert not [r for r in deployed.resources if "HorizontalPodAutoscaler" in r.type]


def test_the_servers_scale_on_load_within_the_configured_bounds(deployed: Deployed) -> None:
    inference = deployed.config.inference
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        scaled = deployed.named("ScaledObject", namespace, "server")
        _assert_scales_on_the_load(scaled, "server", {"region": region.name, "app": "server"})
        spec = scaled["spec"]
        # Never more GPU servers than the region's GPU pool can hold, never fewer than the minimum.
        ceiling = region.gpu.max * region.gpus_per_node if has_gpus(region) else inference.max_replicas
        assert spec["minReplicaCount"] == inference.min_replicas
        assert spec["maxReplicaCount"] == max(inference.min_replicas, min(inference.max_replicas, ceiling))
        triggers = _triggers(scaled)
        assert triggers["in-flight"]["metadata"]["threshold"] == str(inference.target_in_flight_per_replica)
        assert float(triggers["p99-latency"]["metadata"]["threshold"]) == inference.target_p99_ms / 1000
        assert triggers["cpu"]["metadata"] == {"value": str(inference.target_cpu_utilization)}
        # The ScaledObject owns the replica count: the Deployment leaves it unset.
        assert "replicas" not in deployed.named("Deployment", namespace, "server")["spec"]


def test_every_edge_site_scales_on_its_own_load_over_its_own_nodes(deployed: Deployed) -> None:
    inference = deployed.config.inference
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        for site in region.edge_sites:
            name = f"edge-{site.name}"
            scaled = deployed.named("ScaledObject", namespace, name)
            _assert_scales_on_the_load(scaled, name, {"region": region.name, "app": "edge", "site": site.name})
            spec = scaled["spec"]
            assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (site.capacity, site.peak_replicas)
            triggers = _triggers(scaled)
            assert triggers["in-flight"]["metadata"]["threshold"] == str(inference.edge_target_in_flight_per_replica)
            assert float(triggers["p99-latency"]["metadata"]["threshold"]) == inference.edge_target_p99_ms / 1000
            assert "replicas" not in deployed.named("Deployment", namespace, name)["spec"]


def test_without_prometheus_the_count_holds_and_scaling_down_is_slow(deployed: Deployed) -> None:
    stabilization = deployed.config.inference.scale_down_stabilization_seconds
    scaled_objects = deployed.objects("ScaledObject")
    assert scaled_objects
    for scaled in scaled_objects:
        spec = scaled["spec"]
        assert spec["fallback"] == {
            "failureThreshold": 3,
            "replicas": spec["minReplicaCount"],
            "behavior": "currentReplicasIfHigher",
        }
        hpa = spec["advanced"]["horizontalPodAutoscalerConfig"]
        scale_down = hpa["behavior"]["scaleDown"]
        assert scale_down["stabilizationWindowSeconds"] == stabilization
        assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_kedas_hpa_takes_the_deployments_name_and_adopts_the_former_one(deployed: Deployed) -> None:
    """The servers' CPU-only HPA was named `server`: the update that replaces it creates the
    ScaledObject first, and KEDA's webhook refuses one for a Deployment an HPA scales unless it
    adopts that HPA."""
    for scaled in deployed.objects("ScaledObject"):
        spec = scaled["spec"]
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == spec["scaleTargetRef"]["name"]
        assert scaled["metadata"]["annotations"] == {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}


def test_every_scaled_object_passes_kedas_crd_schema_and_waits_for_keda(deployed: Deployed) -> None:
    """The release brings the CRD: a ScaledObject applied before it would fail the update.
    (A region on a cluster whose KEDA another region owns cannot wait for it: the local stack.)"""
    config = deployed.config
    keda_releases = {r.name for r in deployed.resources if r.type == RELEASE and r.inputs["chart"] == CHART}
    owner_of = {namespace_name(r.name): owns_cluster(config, r) for r in config.regions}
    scaled_objects = [r for r in deployed.resources if r.type == SCALED_OBJECT]
    assert len(scaled_objects) == sum(1 + len(r.edge_sites) for r in config.regions)
    for r in scaled_objects:
        if owner_of[r.inputs["metadata"]["namespace"]]:
            assert keda_releases & set(getattr(r, "dependencies", [])), r.name
    for obj in deployed.objects("ScaledObject"):
        custom_resources.validate(obj)


def test_the_schema_rejects_a_misspelled_scaled_object_field(deployed: Deployed) -> None:
    import jsonschema

    good = deployed.objects("ScaledObject")[0]
    bad = {**good, "spec": {**good["spec"], "maxReplicas": 3}}
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(bad)
    wrong_type = {**good, "spec": {**good["spec"], "fallback": {"failureThreshold": 3, "replicas": "2"}}}
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(wrong_type)


def test_an_edge_site_may_not_peak_below_its_node_count(base_config: dict[str, Any]) -> None:
    region = next(r for r in base_config["regions"] if r.get("edgeSites"))
    region["edgeSites"][0] |= {"capacity": 3, "maxReplicas": 2}
    with pytest.raises(ConfigError) as err:
        parse(base_config, "test")
    assert "edgeSites[0].maxReplicas: must be >= capacity (3), got 2" in str(err.value)


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    effect = {"NO_SCHEDULE": "NoSchedule"}.get(taint["effect"], taint["effect"])
    return any(
        t["key"] == taint["key"]
        and t.get("effect") in (None, effect)
        and (t["operator"] == "Exists" or t.get("value") == taint.get("value"))
        for t in tolerations
    )


def _server(resources: list[Any], kind: str, namespace: str) -> dict[str, Any]:
    return next(
        r.inputs
        for r in resources
        if r.type == kind
        and r.inputs["metadata"]["namespace"] == namespace
        and r.inputs["metadata"]["name"] == "server"
    )


def test_pending_gpu_servers_fit_the_gpu_pools_that_autoscale_for_them(stack: str, inventory_of) -> None:
    """GPU nodes follow the pods: a server pod KEDA adds and no node holds stays Pending, and
    Karpenter (EKS) or the GKE cluster autoscaler adds a GPU node only for a pod that node
    would admit: the pool's taints tolerated, its labels matching the pod's node selector.
    And the pools hold every replica KEDA may ask for."""
    config = load_stack(stack)
    resources = inventory_of(stack).resources
    pools: list[tuple[list[dict[str, Any]], dict[str, str], int]] = []  # taints, labels, GPUs at max
    for r in resources:
        if r.type == "kubernetes:karpenter.sh/v1:NodePool":
            template = r.inputs["spec"]["template"]
            gpus = int(r.inputs["spec"]["limits"]["nvidia.com/gpu"])
            pools.append((template["spec"]["taints"], template["metadata"]["labels"], gpus))
        elif r.type == "gcp:container/nodePool:NodePool" and r.inputs["nodeConfig"].get("guestAccelerators"):
            node = r.inputs["nodeConfig"]
            (accelerator,) = node["guestAccelerators"]
            autoscaling = r.inputs["autoscaling"]  # the cluster autoscaler sizes it, not a fixed count
            assert "nodeCount" not in r.inputs and autoscaling["maxNodeCount"] >= 1
            pools.append((node["taints"], node["labels"], int(autoscaling["maxNodeCount"] * accelerator["count"])))
    cloud_regions = [r for r in config.regions if r.kubernetes is None]
    assert len(pools) >= len(cloud_regions)
    for region in cloud_regions:
        namespace = namespace_name(region.name)
        pod = _server(resources, "kubernetes:apps/v1:Deployment", namespace)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        selector = pod.get("nodeSelector") or {}
        fitting = [
            gpus
            for taints, labels, gpus in pools
            if all(_tolerates(pod.get("tolerations") or [], t) for t in taints) and selector.items() <= labels.items()
        ]
        assert fitting, f"{region.name}: no GPU pool would scale up for a pending server"
        scaled = _server(resources, SCALED_OBJECT, namespace)
        assert scaled["spec"]["maxReplicaCount"] <= region.gpu.max * region.gpus_per_node <= max(fitting)


def test_keda_talks_only_to_the_api_server_prometheus_and_itself(deployed: Deployed) -> None:
    policies = [p for p in deployed.objects("NetworkPolicy") if p["metadata"]["namespace"] == NAMESPACE]
    by_name = {p["metadata"]["name"]: p["spec"] for p in policies}
    owners = sum(owns_cluster(deployed.config, r) for r in deployed.config.regions)
    assert len(policies) == 4 * owners
    assert set(by_name) == {"default-deny", "keda-operator", "keda-metrics-server", "keda-webhooks"}
    assert by_name["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    def ports(rules: list[dict[str, Any]]) -> set[int]:
        return {p["port"] for rule in rules for p in rule["ports"]}

    operator, metrics, webhooks = (by_name[f"keda-{n}"] for n in ("operator", "metrics-server", "webhooks"))
    assert ports(operator["ingress"]) == {9666}  # from the metrics server only
    assert ports(metrics["ingress"]) == ports(webhooks["ingress"]) == {CONTROL_PLANE_PORT}  # the API server
    prometheus = [r for r in operator["egress"] if ports([r]) == {9090}]
    assert prometheus[0]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert ports(metrics["egress"]) == {53, 443, 6443, 9666}
    assert ports(webhooks["egress"]) == {53, 443, 6443}
