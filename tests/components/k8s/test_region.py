"""RegionWorkloads: what a complete region registers, and the inputs it refuses because they
would deploy a broken federation."""

from __future__ import annotations

import pytest

from components.config import load_stack
from components.k8s.monitoring_files import rule_files
from components.k8s.region import RegionWorkloads, RegionWorkloadsArgs
from components.k8s.trust import FederationTrust, FederationTrustArgs
from meridian.mocks import Recorded, run_under_mocks
from tests.components.k8s.harness import access_for, engine_config, front_door_for
from workloads.contract import Image

REFS = {image: f"registry.example.com/meridian/{image}@sha256:{'0' * 64}" for image in Image}
RECEIVER = "receiver.example.com:9443"  # the home's MetricsReceiver, for the regions sending home


def _deploy_one(
    region_name: str,
    superlink_address: str | None,
    images: dict,
    *,
    follow_global: bool = True,
    metrics_receiver: str | None = RECEIVER,
) -> list[Recorded]:
    config = load_stack("dev")
    region = next(r for r in config.regions if r.name == region_name)
    global_models = access_for(config.home_region, home=True).global_models if follow_global else None

    def program() -> None:
        RegionWorkloads(
            "r",
            RegionWorkloadsArgs(
                config=config,
                region=region,
                access=access_for(region, home=region is config.home_region),
                images=images,
                superlink_address=superlink_address,
                trust=FederationTrust("federation", FederationTrustArgs(config)),
                front_door=front_door_for(config, region),
                global_models=global_models,
                metrics_receiver=metrics_receiver if region is not config.home_region else None,
            ),
        )

    return run_under_mocks(program, config=engine_config(config)).resources


def test_a_region_without_an_image_ref_is_refused() -> None:
    without_edge = {k: v for k, v in REFS.items() if k is not Image.EDGE}
    with pytest.raises(Exception, match="no image ref for edge"):
        _deploy_one("us-east-1", None, without_edge)


def test_a_region_other_than_home_may_not_run_the_superlink() -> None:
    with pytest.raises(Exception, match="superlink_address must be None exactly for the home region"):
        _deploy_one("europe-west4", None, REFS)


def test_the_home_region_may_not_point_at_another_superlink() -> None:
    with pytest.raises(Exception, match="superlink_address must be None exactly for the home region"):
        _deploy_one("us-east-1", "elsewhere.example.com:9092", REFS)


def test_a_complete_region_runs_its_supernode_and_servers_but_no_superlink() -> None:
    """Not home: a SuperNode pointed at the home SuperLink and the inference server, each with
    its identity and NetworkPolicy, and its localizer; its cluster's monitoring stack (DCGM
    included: a GPU pool) with the rules, remote-writing to the home's receiver with its client
    certificate, a PodMonitor per workload, and KEDA scaling the server; no SuperLink, no run
    Jobs, no GPU plugin (GKE brings its own), no edge servers (the region has no edge site), no
    dashboards (Grafana is at home); the server behind the region's Gateway (a GCP region)."""
    resources = _deploy_one("europe-west4", "superlink.example.com:9092", REFS)
    components = sorted(r.type.removeprefix("meridian:k8s:") for r in resources if r.type.startswith("meridian:"))
    assert components == sorted(
        [
            "FederationTrust",
            "RegionWorkloads",
            "SuperNode",
            "Localizer",
            "Callers",
            "RegionalInference",
            "EdgeServers",
            "FrontDoorGateway",
            "MonitoringStack",
            "RegionMonitors",
            "MonitoringFiles",
            "Keda",
        ]
    )
    releases = sorted(r.inputs["chart"] for r in resources if r.type == "kubernetes:helm.sh/v3:Release")
    assert releases == ["dcgm-exporter", "keda", "kube-prometheus-stack"]
    objects = sorted(
        (r.type.rsplit(":", 1)[1], r.inputs["metadata"]["name"])
        for r in resources
        if r.type.startswith("kubernetes:") and "metadata" in r.inputs
    )
    assert objects == sorted(
        [
            ("Namespace", "meridian-europe-west4"),
            ("Namespace", "keda"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "keda-operator"),
            ("NetworkPolicy", "keda-metrics-server"),
            ("NetworkPolicy", "keda-webhooks"),
            ("NetworkPolicy", "default-deny"),
            ("ConfigMap", "artifact-trust"),
            ("ServiceAccount", "supernode"),
            ("Secret", "supernode-auth"),
            ("Deployment", "supernode"),
            ("NetworkPolicy", "supernode"),
            ("ServiceAccount", "localizer"),
            ("ConfigMap", "global-model-trust"),
            ("CronJob", "localizer"),
            ("NetworkPolicy", "localizer"),
            ("Secret", "api-keys"),
            ("ServiceAccount", "server"),
            ("Deployment", "server"),
            ("Service", "server"),
            ("HTTPRoute", "server"),
            ("HealthCheckPolicy", "server"),
            ("Gateway", "front-door"),
            ("HTTPRoute", "front-door-redirect"),
            ("GCPGatewayPolicy", "front-door"),
            ("ScaledObject", "server"),
            ("PodDisruptionBudget", "server"),
            ("NetworkPolicy", "server"),
            ("Namespace", "monitoring"),
            ("Secret", "remote-write-tls"),
            ("ServiceMonitor", "dcgm-exporter"),
            ("PodMonitor", "server"),
            ("PodMonitor", "supernode"),
            ("PodMonitor", "canary"),
            *(("PrometheusRule", name) for name in rule_files()),
        ]
    )
    (node,) = [r for r in resources if r.type.endswith(":Deployment") and r.inputs["metadata"]["name"] == "supernode"]
    assert "superlink.example.com:9092" in node.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    (stack,) = [
        r
        for r in resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["chart"] == "kube-prometheus-stack"
    ]
    (remote_write,) = stack.inputs["values"]["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert remote_write["url"] == f"https://{RECEIVER}/api/v1/write"


def test_a_region_whose_cluster_sends_home_without_the_receivers_address_is_refused() -> None:
    with pytest.raises(Exception, match="metrics_receiver must be the home's"):
        _deploy_one("europe-west4", "superlink.example.com:9092", REFS, metrics_receiver=None)


def test_a_region_with_a_registry_but_no_global_registry_to_follow_is_refused() -> None:
    with pytest.raises(Exception, match="no global registry to publish to or follow"):
        _deploy_one("europe-west4", "superlink.example.com:9092", REFS, follow_global=False)
