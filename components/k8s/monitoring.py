"""Metrics collection per cluster: kube-prometheus-stack (the Prometheus Operator, Prometheus,
Alertmanager, node-exporter, kube-state-metrics; Grafana at home) and, where GPUs are, NVIDIA's
DCGM exporter, each a pinned Helm release.

The operator's way (ServiceMonitor/PodMonitor objects, components/k8s/monitors.py), not pod
annotations: no default install honours `prometheus.io/*` annotations, and a monitor is where
the contract's target labels (`region`, `app`) are set by relabeling.

Once per cluster (regions may share an existing cluster: the first region on it owns the
install, as with the GPU device plugin; an existing cluster may `reuse` an operator it already
runs, `monitoring.existingClusters`):
- the namespace MONITORING_NAMESPACE at Pod Security `privileged`, on purpose: node-exporter
  runs with hostNetwork and hostPID and reads the host's root filesystem, and the DCGM exporter
  runs as root with SYS_ADMIN and mounts the kubelet's pod-resources socket; `baseline` admits
  neither. Nothing of Meridian's runs there (the policy pack's config exempts it by name:
  meridian/policy.py PRIVILEGED_ADDON_RULES);
- kube-prometheus-stack with fullnameOverride FULLNAME, so PROMETHEUS_URL is known before it
  exists. Its Prometheus selects every ServiceMonitor, PodMonitor and PrometheusRule of every
  namespace (the chart's default selects only its own release's), keeps `monitoring.retentionDays`
  on a persistent volume of `monitoring.storageGib`. Grafana runs only in the home cluster, its
  dashboard sidecar loading ConfigMaps labelled `grafana_dashboard: "1"` from every namespace
  (components/k8s/monitoring_files.py). Managed control planes (EKS, GKE) expose no scheduler,
  controller manager or etcd to scrape: those monitors are off there, else they alert forever;
- the DCGM exporter on GPU nodes, scraped by a ServiceMonitor that keeps the exporter's own
  `namespace`/`pod`/`container` labels (the pod holding the GPU), so GPU utilisation and memory
  are queryable per pod.

Sources (read 2026-11-30): prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3
(commit ea930baee), charts/kube-prometheus-stack/values.yaml (prometheus.prometheusSpec.*,
grafana.sidecar.dashboards.*); NVIDIA/dcgm-exporter, tag 4.5.3-4.8.2 (commit 691c92762),
deployment/values.yaml and templates/service.yaml (Service port `metrics`, selector labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Cloud
from components.cluster_access import GPU_TAINT_KEY
from components.config import Region, StackConfig
from components.k8s.gpu import GPU_NODE_AFFINITY, cluster_key, has_gpus
from components.k8s.labels import metadata
from components.k8s.namespace import pod_security_labels
from workloads import contract
from workloads.contract import MetricsApp

# kube-prometheus-stack, installed per cluster in its own namespace with every name prefixed
# `monitoring` (fullnameOverride), so what reads Prometheus (KEDA's triggers, the canary
# controller) can name it before it exists.
MONITORING_NAMESPACE = "monitoring"
FULLNAME = "monitoring"
PROMETHEUS_PORT = 9090  # its Service and pods
PROMETHEUS_URL = f"http://{FULLNAME}-prometheus.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}"
POD_SECURITY_LEVEL = "privileged"  # node-exporter and the DCGM exporter: see the docstring
# Prometheus pods carry this label (set by the operator): NetworkPolicies admit scrapes by it.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
MONITORING_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "30s"
DASHBOARD_LABEL = "grafana_dashboard"  # the Grafana sidecar loads ConfigMaps labelled `<this>: "1"`

CHART = "kube-prometheus-stack"
CHART_VERSION = "88.5.3"
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
RELEASE_NAME = "kube-prometheus-stack"

DCGM_CHART = "dcgm-exporter"
DCGM_CHART_VERSION = "4.8.2"
DCGM_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_NAME = "dcgm-exporter"  # release and fullnameOverride: the Service's name and selector labels
DCGM_PORT_NAME = "metrics"  # templates/service.yaml
# The chart's default toleration (control-plane nodes) plus the taint our GPU pools carry.
DCGM_TOLERATIONS = [
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
]
# GKE installs the NVIDIA driver on the node under this path (gpu_driver_installation_config)
# and mounts it at /usr/local/nvidia only into pods that request a GPU; the exporter requests
# none, so it mounts the host path itself to load the driver's libraries.
GKE_DRIVER_HOST_PATH = "/home/kubernetes/bin/nvidia"
GKE_DRIVER_MOUNT = "/usr/local/nvidia"

# Managed control planes: nothing of these to scrape (values.yaml top-level keys).
CONTROL_PLANE_MONITORS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd")
RETENTION_SIZE_SHARE = 0.9  # of the volume: Prometheus drops old blocks before the disk fills
PROMETHEUS_RESOURCES = {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}


def target_relabelings(region: str, app: MetricsApp) -> list[dict[str, Any]]:
    """The contract's target labels, static per monitor (workloads/contract.py)."""
    return [
        {"action": "replace", "targetLabel": "region", "replacement": region},
        {"action": "replace", "targetLabel": "app", "replacement": app.value},
    ]


def service_monitor(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    selector: dict[str, str],
    port: str,
    region: str,
    app: MetricsApp,
    honor_labels: bool,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """A ServiceMonitor scraping the named port of the Services matching `selector` in `namespace`."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=MONITORING_API,
        kind="ServiceMonitor",
        metadata=metadata(name, namespace, labels),
        spec={
            "selector": {"matchLabels": selector},
            "endpoints": [
                {
                    "port": port,
                    "path": contract.METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    "honorLabels": honor_labels,
                    "relabelings": target_relabelings(region, app),
                }
            ],
        },
        opts=opts,
    )


def cluster_regions(config: StackConfig, region: Region) -> list[Region]:
    """The stack's regions on `region`'s cluster, in stack order (a cloud region: itself)."""
    key = cluster_key(region)
    if key is None:
        return [region]
    return [r for r in config.regions if cluster_key(r) == key]


def owns_cluster_monitoring(config: StackConfig, region: Region) -> bool:
    """Whether `region` carries its cluster's monitoring: the stack, the rules (the first region
    on the cluster), once per cluster."""
    return cluster_regions(config, region)[0].name == region.name


def installs_stack(config: StackConfig, region: Region) -> bool:
    """Whether `region` installs kube-prometheus-stack (and DCGM) on its cluster."""
    if region.kubernetes is not None and config.monitoring.existing_clusters == "reuse":
        return False
    return owns_cluster_monitoring(config, region)


def stack_values(config: StackConfig, region: Region, *, grafana: bool) -> dict[str, Any]:
    """kube-prometheus-stack's values for `region`'s cluster."""
    settings = config.monitoring
    values: dict[str, Any] = {
        "fullnameOverride": FULLNAME,
        "prometheus": {
            "prometheusSpec": {
                # {} with NilUsesHelmValues false: every monitor and rule of every namespace
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelector": {},
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelector": {},
                "podMonitorNamespaceSelector": {},
                "ruleSelectorNilUsesHelmValues": False,
                "ruleSelector": {},
                "ruleNamespaceSelector": {},
                "retention": f"{settings.retention_days}d",
                "retentionSize": f"{int(settings.storage_gib * RETENTION_SIZE_SHARE)}GiB",
                # Added only to series that lack it: node and cluster series name their cluster.
                "externalLabels": {"cluster": region.name},
                "resources": PROMETHEUS_RESOURCES,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{settings.storage_gib}Gi"}},
                        }
                    }
                },
            }
        },
        "grafana": {"enabled": grafana},
    }
    if grafana:
        values["grafana"]["sidecar"] = {
            "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1", "searchNamespace": "ALL"}
        }
    if region.cloud is not Cloud.KUBERNETES:
        values.update({monitor: {"enabled": False} for monitor in CONTROL_PLANE_MONITORS})
    return values


def dcgm_values(region: Region) -> dict[str, Any]:
    """The DCGM exporter's values: on GPU nodes only; its ServiceMonitor is ours (DcgmMonitor)."""
    values: dict[str, Any] = {
        "fullnameOverride": DCGM_NAME,
        "serviceMonitor": {"enabled": False},
        "affinity": GPU_NODE_AFFINITY,
        "tolerations": DCGM_TOLERATIONS,
    }
    if region.cloud is Cloud.GCP:
        values["extraHostVolumes"] = [{"name": "nvidia-driver", "hostPath": GKE_DRIVER_HOST_PATH}]
        values["extraVolumeMounts"] = [
            # the chart's default mount (deployment/values.yaml), kept: a list value replaces it
            {
                "name": "exporter-metrics-volume",
                "mountPath": "/etc/dcgm-exporter/default-counters.csv",
                "subPath": "default-counters.csv",
            },
            {"name": "nvidia-driver", "mountPath": GKE_DRIVER_MOUNT, "readOnly": True},
        ]
        values["extraEnv"] = [{"name": "LD_LIBRARY_PATH", "value": f"{GKE_DRIVER_MOUNT}/lib64"}]
    return values


@dataclass(frozen=True, kw_only=True)
class MonitoringStackArgs:
    config: StackConfig
    region: Region  # the region that installs its cluster's stack (installs_stack)
    provider: k8s.Provider  # that cluster's
    labels: dict[str, str]


class MonitoringStack(pulumi.ComponentResource):
    """kube-prometheus-stack on one cluster, and the DCGM exporter where it has GPUs."""

    release: k8s.helm.v3.Release  # installs the operator's CRDs: monitors and rules wait for it

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:MonitoringStack", name, None, opts)
        config, region = args.config, args.region
        regions = cluster_regions(config, region)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=metadata(
                MONITORING_NAMESPACE,
                None,
                {**args.labels, **pod_security_labels(POD_SECURITY_LEVEL, config.kubernetes_version)},
            ),
            opts=on_cluster,
        )
        after_namespace = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace]))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=MONITORING_NAMESPACE,
            atomic=True,
            values=stack_values(config, region, grafana=any(r.name == config.home for r in regions)),
            opts=after_namespace,
        )
        if any(has_gpus(r) for r in regions):
            dcgm = k8s.helm.v3.Release(
                f"{name}-dcgm",
                name=DCGM_NAME,
                chart=DCGM_CHART,
                version=DCGM_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DCGM_CHART_REPO),
                namespace=MONITORING_NAMESPACE,
                atomic=True,
                values=dcgm_values(region),
                opts=after_namespace,
            )
            service_monitor(
                f"{name}-dcgm-monitor",
                name=DCGM_NAME,
                namespace=MONITORING_NAMESPACE,
                labels=args.labels,
                selector={"app.kubernetes.io/name": DCGM_NAME, "app.kubernetes.io/instance": DCGM_NAME},
                port=DCGM_PORT_NAME,
                region=region.name,
                app=MetricsApp.GPU,
                # The exporter's `namespace`/`pod`/`container` name the pod holding the GPU,
                # not the exporter: they win over the target's.
                honor_labels=True,
                opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.release, dcgm])),
            )
        self.register_outputs({"status": self.release.status})
