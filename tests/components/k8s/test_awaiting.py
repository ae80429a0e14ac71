"""A first `pulumi up` converges: what waits on the model pipeline is not awaited as ready.

SuperNodes wait for their region's data, servers and edges for their region's first model;
`pulumi up` must not hold (and fail after 10 minutes) on them, yet must still wait for the load
balancer addresses that the DNS records are built from. Everything else keeps the provider's
full await: the SuperLink, its Services, the Jobs.
"""

from __future__ import annotations

from components.catalog import Cloud
from components.k8s.awaiting import ADDRESS_ASSIGNED, CLUSTER_IP_ASSIGNED, ROLLOUT_STARTED, WAIT_FOR
from components.k8s.labels import NAME_LABEL
from tests.components.k8s.conftest import Deployed

GATED_APPS = {"supernode", "server", "edge"}


def _annotations(obj: dict[str, object]) -> dict[str, str]:
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return metadata.get("annotations") or {}


def _app(obj: dict[str, object]) -> str:
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return metadata["labels"][NAME_LABEL]


def test_deployments_gated_by_the_pipeline_wait_only_for_their_rollout(deployed: Deployed) -> None:
    deployments = deployed.objects("Deployment")
    gated = [d for d in deployments if _app(d) in GATED_APPS]
    assert {_app(d) for d in gated} >= {"supernode", "server"}
    for deployment in gated:
        assert _annotations(deployment).items() >= ROLLOUT_STARTED.items(), deployment["metadata"]
    for deployment in deployments:
        if _app(deployment) not in GATED_APPS:
            assert WAIT_FOR not in _annotations(deployment), deployment["metadata"]


def test_public_services_of_gated_apps_wait_for_their_address_only(deployed: Deployed) -> None:
    services = [s for s in deployed.objects("Service") if s["spec"]["type"] == "LoadBalancer"]
    gated = [s for s in services if _app(s) in GATED_APPS]
    assert gated or all(r.cloud is Cloud.GCP for r in deployed.config.regions), "public inference Services"
    for svc in gated:
        assert _annotations(svc).items() >= ADDRESS_ASSIGNED.items(), svc["metadata"]
    # The SuperLink's Fleet Service is ready without the pipeline: the full await stays.
    for svc in services:
        if _app(svc) not in GATED_APPS:
            assert WAIT_FOR not in _annotations(svc), svc["metadata"]


def test_services_behind_a_gateway_wait_for_their_cluster_ip_only(deployed: Deployed) -> None:
    """A GCP region's server and edges are ClusterIP Services routed from its Gateway."""
    routed = {
        (r["metadata"]["namespace"], b["name"])
        for r in deployed.objects("HTTPRoute")
        for rule in r["spec"]["rules"]
        for b in rule.get("backendRefs", [])
    }
    for namespace, name in routed:
        assert _annotations(deployed.named("Service", namespace, name)).items() >= CLUSTER_IP_ASSIGNED.items()
