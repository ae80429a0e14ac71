"""Metrics collection per cluster: one pinned kube-prometheus-stack per cluster (Grafana at home
only), DCGM where GPUs are, a PodMonitor per workload with the contract's target labels, the
rules and dashboards of monitoring/, and the metrics ports reachable by Prometheus alone."""

from __future__ import annotations

import json
from typing import Any

from components.config import Region, StackConfig
from components.k8s import monitoring
from components.k8s import supernode as supernode_component
from components.k8s.canary import CANARY_APP
from components.k8s.clusters import cluster_key, cluster_regions, owns_cluster
from components.k8s.gpu import has_gpus
from components.k8s.monitoring_files import dashboard_files, rule_files
from components.k8s.namespace import namespace_name
from tests.components import custom_resources
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.manifests import containers, env_of, plain
from workloads import contract

RELEASE = "kubernetes:helm.sh/v3:Release"
METRICS_PORTS = {contract.METRICS_PORT, contract.TRAINER_METRICS_PORT}


def _releases(deployed: Deployed, chart: str) -> list[dict[str, Any]]:
    return [plain(r.inputs) for r in deployed.resources if r.type == RELEASE and r.inputs["chart"] == chart]


def _installing(config: StackConfig) -> list[Region]:
    return [r for r in config.regions if monitoring.installs_stack(config, r)]


def _relabeled(endpoint: dict[str, Any]) -> dict[str, str]:
    """The static target labels an endpoint's relabelings set."""
    return {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"] if "replacement" in r}


def test_every_cluster_runs_one_pinned_kube_prometheus_stack_that_selects_every_monitor(deployed: Deployed) -> None:
    config = deployed.config
    releases = _releases(deployed, monitoring.CHART)
    # a cloud region is a cluster of its own; regions sharing an existing cluster install it once
    assert len(releases) == len(_installing(config)) == len({cluster_key(r) or r.name for r in config.regions})
    for release in releases:
        assert release["version"] == monitoring.CHART_VERSION
        assert release["repositoryOpts"] == {"repo": monitoring.CHART_REPO}
        assert release["namespace"] == monitoring.MONITORING_NAMESPACE
        values = release["values"]
        assert values["fullnameOverride"] == "monitoring"  # PROMETHEUS_URL names monitoring-prometheus
        spec = values["prometheus"]["prometheusSpec"]
        for kind in ("serviceMonitor", "podMonitor", "rule"):
            assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
            assert spec[f"{kind}Selector"] == spec[f"{kind}NamespaceSelector"] == {}
        assert spec["retention"] == f"{config.monitoring.retention_days}d"
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == f"{config.monitoring.storage_gib}Gi"
    assert monitoring.PROMETHEUS_URL == "http://monitoring-prometheus.monitoring.svc:9090"


def test_the_monitoring_namespace_is_privileged_on_purpose(deployed: Deployed) -> None:
    """node-exporter and the DCGM exporter need the host: `baseline` admits neither."""
    namespaces = [n for n in deployed.objects("Namespace") if n["metadata"]["name"] == "monitoring"]
    assert len(namespaces) == len(_installing(deployed.config))
    for namespace in namespaces:
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_grafana_runs_in_the_home_cluster_only_and_loads_labelled_dashboards(deployed: Deployed) -> None:
    config = deployed.config
    with_grafana = [r for r in _releases(deployed, monitoring.CHART) if r["values"]["grafana"]["enabled"]]
    assert len(with_grafana) == 1
    sidecar = with_grafana[0]["values"]["grafana"]["sidecar"]["dashboards"]
    assert sidecar == {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL"}
    home_cluster = cluster_regions(config, config.home_region)[0]
    assert with_grafana[0]["values"]["prometheus"]["prometheusSpec"]["externalLabels"] == {"cluster": home_cluster.name}


def test_dcgm_runs_only_on_clusters_with_gpus_and_keeps_the_gpu_pods_labels(deployed: Deployed) -> None:
    config = deployed.config
    gpu_clusters = [r for r in _installing(config) if any(has_gpus(o) for o in cluster_regions(config, r))]
    releases = _releases(deployed, monitoring.DCGM_CHART)
    assert len(releases) == len(gpu_clusters)
    for release in releases:
        assert release["version"] == monitoring.DCGM_CHART_VERSION
        assert release["namespace"] == monitoring.MONITORING_NAMESPACE
        assert release["values"]["serviceMonitor"] == {"enabled": False}  # ours, below
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in release["values"][
            "tolerations"
        ]
    monitors = deployed.objects("ServiceMonitor")
    assert sorted(_relabeled(m["spec"]["endpoints"][0])["region"] for m in monitors) == sorted(
        r.name for r in gpu_clusters
    )
    for monitor in monitors:
        assert monitor["metadata"] == {**monitor["metadata"], "namespace": "monitoring", "name": "dcgm-exporter"}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True
        assert _relabeled(endpoint)["app"] == contract.MetricsApp.GPU


def _pod_monitors(deployed: Deployed, region: Region) -> dict[str, dict[str, Any]]:
    namespace = namespace_name(region.name)
    return {m["metadata"]["name"]: m for m in deployed.objects("PodMonitor") if m["metadata"]["namespace"] == namespace}


def test_every_workload_has_a_pod_monitor_setting_region_and_app(deployed: Deployed) -> None:
    config = deployed.config
    for region in config.regions:
        monitors = _pod_monitors(deployed, region)
        expected = {
            "server": contract.MetricsApp.SERVER,
            "supernode": contract.MetricsApp.SUPERNODE,
            CANARY_APP: contract.MetricsApp.CANARY,
            **({"edge": contract.MetricsApp.EDGE} if region.edge_sites else {}),
            **({"superlink": contract.MetricsApp.SUPERLINK} if region.name == config.home else {}),
        }
        assert sorted(monitors) == sorted(expected)
        for app, metrics_app in expected.items():
            spec = monitors[app]["spec"]
            assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": app, "meridian.io/region": region.name}
            (endpoint,) = spec["podMetricsEndpoints"]
            assert _relabeled(endpoint) == {"region": region.name, "app": metrics_app}
            assert endpoint["path"] == contract.METRICS_PATH
            if app == "superlink":  # the ServerApp's per-participant `region` wins
                assert endpoint["portNumber"] == contract.TRAINER_METRICS_PORT and endpoint["honorLabels"] is True
            else:
                assert endpoint["portNumber"] == contract.METRICS_PORT and endpoint["honorLabels"] is False
        if region.edge_sites:
            (endpoint,) = monitors["edge"]["spec"]["podMetricsEndpoints"]
            site = [r for r in endpoint["relabelings"] if r["targetLabel"] == "site"]
            assert site == [
                {
                    "action": "replace",
                    "sourceLabels": ["__meta_kubernetes_pod_label_meridian_io_edge_site"],
                    "targetLabel": "site",
                }
            ]


def test_each_monitored_pod_serves_the_scraped_port(deployed: Deployed) -> None:
    """The pods a PodMonitor selects declare its port (the canary controller's Deployment is not ours)."""
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        for name, monitor in _pod_monitors(deployed, region).items():
            selector = monitor["spec"]["selector"]["matchLabels"]
            port = monitor["spec"]["podMetricsEndpoints"][0]["portNumber"]
            pods = [
                d
                for d in deployed.objects("Deployment")
                if d["metadata"]["namespace"] == namespace
                and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
            ]
            assert pods or name == CANARY_APP, name
            for deployment in pods:
                ports = {p["containerPort"] for c in containers(deployment) for p in c.get("ports") or []}
                assert port in ports, deployment["metadata"]["name"]


def test_servers_and_edges_serve_metrics_on_their_own_port(deployed: Deployed) -> None:
    for deployment in deployed.objects("Deployment"):
        for container in containers(deployment):
            if container["name"] in ("server", "edge"):
                assert {"name": "metrics", "containerPort": contract.METRICS_PORT, "protocol": "TCP"} in container[
                    "ports"
                ]
                env = env_of(container)
                assert env[contract.ENV_METRICS_PORT] == str(contract.METRICS_PORT)


def test_supernodes_export_training_metrics_from_a_sidecar_sharing_the_records_file(deployed: Deployed) -> None:
    for region in deployed.config.regions:
        supernode = deployed.named("Deployment", namespace_name(region.name), "supernode")
        by_name = {c["name"]: c for c in containers(supernode)}
        node, sidecar = by_name[supernode_component.CLIENTAPP_CONTAINER], by_name["node-metrics"]  # the fits' writer
        records = env_of(node)[contract.ENV_TRAINING_RECORDS]
        assert records.startswith(contract.CACHE_MOUNT + "/")
        assert sidecar["command"] == list(contract.NODE_METRICS_COMMAND)
        assert sidecar["args"] == ["--records", records, "--host", "0.0.0.0", "--port", str(contract.METRICS_PORT)]
        assert sidecar["image"] == node["image"]  # the trainer image
        for c in (node, sidecar):  # both see the pod's one cache volume
            assert {"name": "cache", "mountPath": contract.CACHE_MOUNT} in c["volumeMounts"]


def test_no_service_exposes_a_metrics_port(deployed: Deployed) -> None:
    for service in deployed.objects("Service"):
        for port in service["spec"]["ports"]:
            assert port["port"] not in METRICS_PORTS and port["targetPort"] != "metrics", service["metadata"]["name"]


def test_only_the_clusters_prometheus_may_reach_a_metrics_port(deployed: Deployed) -> None:
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    scraped: set[tuple[str, str]] = set()
    for policy in deployed.objects("NetworkPolicy"):
        for rule in policy["spec"].get("ingress") or []:
            ports = {p["port"] for p in rule["ports"]}
            if ports & METRICS_PORTS:
                assert ports <= METRICS_PORTS and rule["from"] == [prometheus], policy["metadata"]["name"]
                scraped.add((policy["metadata"]["namespace"], policy["metadata"]["name"]))
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        for app in _pod_monitors(deployed, region):
            assert app == CANARY_APP or (namespace, app) in scraped, (namespace, app)


def test_every_cluster_evaluates_every_rule_file_and_the_home_shows_every_dashboard(deployed: Deployed) -> None:
    config = deployed.config
    carrying = [r for r in config.regions if owns_cluster(config, r)]
    rules = deployed.objects("PrometheusRule")
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in rules) == sorted(
        (namespace_name(region.name), name) for region in carrying for name in rule_files()
    )
    for rule in rules:
        assert rule["spec"] == rule_files()[rule["metadata"]["name"]]
    dashboards = [c for c in deployed.objects("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(c["metadata"]["name"] for c in dashboards) == sorted(f"dashboard-{n}" for n in dashboard_files())
    assert all(c["metadata"]["namespace"] == namespace_name(config.home) for c in dashboards)


def test_every_monitor_and_rule_passes_the_operators_schema_at_the_pinned_version(deployed: Deployed) -> None:
    """Strict: a misspelled field is an error here, where the operator's CRD would drop it silently."""
    vendored = json.loads(custom_resources.SCHEMA_FILES[1].read_text())
    assert f"kube-prometheus-stack-{monitoring.CHART_VERSION}/" in vendored["source"]
    for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
        for obj in deployed.objects(kind):
            custom_resources.validate(obj)
