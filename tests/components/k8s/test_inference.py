"""Regional and edge inference servers: config reaches env, scaling, budgets and Services."""

from __future__ import annotations

from components.k8s.edge import EDGE_SITE_LABEL, ZONE_LABEL
from components.k8s.namespace import namespace_name
from components.k8s.security import GPU_RESOURCE
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, pod_spec
from workloads import contract


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_server_env_comes_from_the_contract_and_the_stack(deployed: Deployed) -> None:
    inference = deployed.config.inference
    for region in deployed.config.regions:
        (server,) = containers(deployed.named("Deployment", namespace_name(region.name), "server"))
        env = _env(server)
        assert env[contract.ENV_REGION] == region.name
        assert env[contract.ENV_MAX_BATCH_SIZE] == str(inference.max_batch_size)
        assert float(env[contract.ENV_MAX_BATCH_WAIT_MS]) == inference.max_batch_wait_ms
        assert env[contract.ENV_QUEUE_CAPACITY] == str(inference.queue_capacity)
        assert env[contract.ENV_STABLE_VERSION] == inference.canary.stable
        assert env[contract.ENV_CANDIDATE_WEIGHT] == str(inference.canary.weight)
        assert env.get(contract.ENV_CANDIDATE_VERSION) == inference.canary.candidate
        assert env[contract.ENV_MODEL_VARIANT] == contract.REGIONAL_MODEL_VARIANT
        assert env[contract.ENV_TRUSTED_KEY] == f"{contract.KEYS_MOUNT}/{contract.TRUSTED_KEY_FILE}"
        assert env[contract.ENV_REGISTRY_URL] == deployed.model_registry_urls[region.name]


def test_hpa_scales_the_server_within_the_configured_bounds(deployed: Deployed) -> None:
    inference = deployed.config.inference
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        hpa = deployed.named("HorizontalPodAutoscaler", namespace, "server")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "server"}
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
            inference.min_replicas,
            inference.max_replicas,
        )
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["target"]["averageUtilization"] == inference.target_cpu_utilization
        # The HPA owns the replica count: the Deployment leaves it unset.
        assert "replicas" not in deployed.named("Deployment", namespace, "server")["spec"]


def test_every_inference_deployment_has_a_disruption_budget(deployed: Deployed) -> None:
    budgets = deployed.objects("PodDisruptionBudget")
    inference = [
        d for d in deployed.objects("Deployment") if any(c["name"] in ("server", "edge") for c in containers(d))
    ]
    assert len(inference) == len(deployed.config.regions) + sum(len(r.edge_sites) for r in deployed.config.regions)
    for d in inference:
        labels = d["spec"]["template"]["metadata"]["labels"]
        matching = [
            b
            for b in budgets
            if b["metadata"]["namespace"] == d["metadata"]["namespace"] and _selects(b["spec"]["selector"], labels)
        ]
        assert len(matching) == 1, d["metadata"]["name"]
        assert matching[0]["spec"]["maxUnavailable"] == 1


def test_server_is_public_on_the_http_port_and_reports_its_address(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        svc = deployed.named("Service", namespace_name(region.name), "server")
        assert svc["spec"]["type"] == "LoadBalancer"
        assert svc["spec"]["ports"] == [{"name": "http", "port": contract.HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]
        assert deployed.inference_endpoints[region.name]


def test_servers_are_scraped_by_prometheus_on_their_metrics_path(deployed: Deployed) -> None:
    for d in deployed.objects("Deployment"):
        if any(c["name"] in ("server", "edge") for c in containers(d)):
            annotations = d["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true"
            assert annotations["prometheus.io/port"] == str(contract.HTTP_PORT)
            assert annotations["prometheus.io/path"] == contract.METRICS_PATH


def test_one_edge_deployment_per_site_on_that_sites_nodes(deployed: Deployed) -> None:
    threshold = deployed.config.inference.edge_confidence_threshold
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        edges = [d for d in deployed.objects("Deployment") if d["metadata"]["namespace"] == namespace and d["metadata"]["name"].startswith("edge-")]
        assert len(edges) == len(region.edge_sites)
        for site in region.edge_sites:
            obj = deployed.named("Deployment", namespace, f"edge-{site.name}")
            assert obj["spec"]["replicas"] == site.capacity
            spec = pod_spec(obj)
            assert spec is not None
            assert spec["nodeSelector"] == {ZONE_LABEL: site.location, EDGE_SITE_LABEL: site.name}
            assert {"key": EDGE_SITE_LABEL, "operator": "Equal", "value": site.name, "effect": "NoSchedule"} in spec["tolerations"]
            (edge,) = containers(obj)
            env = _env(edge)
            assert env[contract.ENV_UPSTREAM_URL] == f"http://server.{namespace}.svc.cluster.local:{contract.HTTP_PORT}"
            assert float(env[contract.ENV_CONFIDENCE_THRESHOLD]) == threshold
            assert env[contract.ENV_MODEL_VARIANT] == contract.EDGE_MODEL_VARIANT
            assert GPU_RESOURCE not in edge["resources"]["limits"]
            if deployed.edge_endpoints is not None:
                assert deployed.edge_endpoints[region.name][site.name]
