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
  are queryable per pod;
- the global view, where the stack spans several clusters (`global_view`): the home's
  Prometheus receives remote-writes (only through the home's MetricsReceiver, mutual TLS:
  components/k8s/metrics_receiver.py says why this way), and every other cluster's Prometheus
  remote-writes its series there with a client certificate of the federation CA, kept in a
  Secret of this namespace. A cluster whose Prometheus is reused (not ours) sends nothing.

Sources (read 2026-11-30): prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3
(commit ea930baee), charts/kube-prometheus-stack/values.yaml (prometheus.prometheusSpec.*,
including enableRemoteWriteReceiver and remoteWrite, grafana.sidecar.dashboards.*), and
charts/crds/crds/crd-prometheuses.yaml (prometheus-operator v0.93.1: RemoteWriteSpec, its
tlsConfig, queueConfig and writeRelabelConfigs); NVIDIA/dcgm-exporter, tag 4.5.3-4.8.2 (commit 691c92762),
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
from components.k8s import helm
from components.k8s.clusters import cluster_regions, owns_cluster
from components.k8s.gpu import GPU_NODE_AFFINITY, has_gpus
from components.k8s.labels import metadata
from components.k8s.namespace import pod_security_labels
from components.k8s.trust import FederationTrust
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


# The global view (remote-write to the home's Prometheus, through its MetricsReceiver).
REMOTE_WRITE_SECRET = "remote-write-tls"  # in MONITORING_NAMESPACE: the client certificate
# A WAN link, 20-220 ms away and sometimes down: few connections (one shard carries
# maxSamplesPerSend per round trip, ~10k samples/s at 200 ms, more than a cluster produces),
# large batches sent at most every 10 s, and backing off to a minute while the home is away;
# the WAL keeps what could not be sent for about two hours.
REMOTE_WRITE_QUEUE = {
    "capacity": 10_000,
    "minShards": 1,
    "maxShards": 10,
    "maxSamplesPerSend": 2_000,
    "batchSendDeadline": "10s",
    "minBackoff": "1s",
    "maxBackoff": "1m",
    "retryOnRateLimit": True,
}
REMOTE_WRITE_TIMEOUT = "30s"
# Sent home: raw series only. The home evaluates the same rules (every expression is `by
# (region, ...)`) over every region's series; recorded series (`level:metric:operations`) and
# alert states sent as well would count twice there.
REMOTE_WRITE_DROPPED = "ALERTS|ALERTS_FOR_STATE|.+:.+"


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


def installs_stack(config: StackConfig, region: Region) -> bool:
    """Whether `region` installs kube-prometheus-stack (and DCGM) on its cluster."""
    if region.kubernetes is not None and config.monitoring.existing_clusters == "reuse":
        return False
    return owns_cluster(config, region)


def global_view(config: StackConfig) -> bool:
    """Whether the home's Prometheus gathers every cluster's series: the stack spans several
    clusters and the home cluster's Prometheus is the stack's own."""
    owners = {cluster_regions(config, r)[0].name for r in config.regions}
    return len(owners) > 1 and installs_stack(config, cluster_regions(config, config.home_region)[0])


def sends_home(config: StackConfig, region: Region) -> bool:
    """Whether `region` remote-writes its cluster's series to the home's Prometheus: it
    installs its cluster's stack, and that cluster is not the home's."""
    on_cluster = {r.name for r in cluster_regions(config, region)}
    return global_view(config) and installs_stack(config, region) and config.home not in on_cluster


def remote_write(receiver: pulumi.Input[str]) -> dict[str, Any]:
    """The Prometheus's `remoteWrite` entry (RemoteWriteSpec) to the home's MetricsReceiver at
    `receiver` ("host:port"), presenting the client certificate of REMOTE_WRITE_SECRET."""

    def secret_key(key: str) -> dict[str, str]:
        return {"name": REMOTE_WRITE_SECRET, "key": key}

    return {
        "name": "home",
        "url": pulumi.Output.concat("https://", receiver, contract.METRICS_RECEIVE_PATH),
        "remoteTimeout": REMOTE_WRITE_TIMEOUT,
        "tlsConfig": {
            "ca": {"secret": secret_key(contract.TLS_CA_FILE)},  # the federation CA: the receiver's issuer
            "cert": {"secret": secret_key(contract.TLS_CERT_FILE)},
            "keySecret": secret_key(contract.TLS_KEY_FILE),
        },
        "queueConfig": REMOTE_WRITE_QUEUE,
        "writeRelabelConfigs": [{"action": "drop", "sourceLabels": ["__name__"], "regex": REMOTE_WRITE_DROPPED}],
    }


def stack_values(
    config: StackConfig,
    region: Region,
    *,
    grafana: bool,
    receiver: bool = False,
    send_to: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """kube-prometheus-stack's values for `region`'s cluster; `receiver`: its Prometheus
    accepts remote-writes (the home's, with a global view); `send_to`: the home's
    MetricsReceiver ("host:port") it remote-writes to."""
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
    spec = values["prometheus"]["prometheusSpec"]
    if receiver:
        spec["enableRemoteWriteReceiver"] = True
    if send_to is not None:
        spec["remoteWrite"] = [remote_write(send_to)]
        # Notifications come from the home's Alertmanager alone: the home evaluates the same
        # rules over every region's series, so a second Alertmanager here would page twice. A
        # region cut off from home still pages there (MeridianRegionSilent); its own Prometheus
        # keeps evaluating the rules, for its UI and its ALERTS series.
        values["alertmanager"] = {"enabled": False}
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
class SendHome:
    """Where a cluster's Prometheus remote-writes, and who certifies it there."""

    receiver: pulumi.Input[str]  # the home's MetricsReceiver, "host:port"
    trust: FederationTrust  # issues the client certificate the receiver admits


@dataclass(frozen=True, kw_only=True)
class MonitoringStackArgs:
    config: StackConfig
    region: Region  # the region that installs its cluster's stack (installs_stack)
    provider: k8s.Provider  # that cluster's
    labels: dict[str, str]
    send_home: SendHome | None = None  # exactly where sends_home(config, region)


class MonitoringStack(pulumi.ComponentResource):
    """kube-prometheus-stack on one cluster, and the DCGM exporter where it has GPUs."""

    release: k8s.helm.v3.Release  # installs the operator's CRDs: monitors and rules wait for it

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:MonitoringStack", name, None, opts)
        config, region = args.config, args.region
        regions = cluster_regions(config, region)
        if (args.send_home is not None) != sends_home(config, region):
            raise ValueError(
                f"region {region.name}: send_home must be given exactly where its cluster remote-writes "
                f"to the home's ({config.home}) Prometheus"
            )
        home_cluster = any(r.name == config.home for r in regions)
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
        release_after: list[pulumi.Resource] = [namespace]
        if args.send_home is not None:
            cert_pem, key_pem = args.send_home.trust.client_certificate(
                f"{name}-remote-write", f"prometheus {region.name}", self
            )
            # The operator reads it when it renders the Prometheus's config: it exists first.
            release_after.append(
                k8s.core.v1.Secret(
                    f"{name}-remote-write-secret",
                    metadata=metadata(REMOTE_WRITE_SECRET, MONITORING_NAMESPACE, args.labels),
                    type="kubernetes.io/tls",
                    string_data={
                        contract.TLS_CERT_FILE: cert_pem,
                        contract.TLS_KEY_FILE: key_pem,
                        contract.TLS_CA_FILE: args.send_home.trust.ca_cert_pem,
                    },
                    opts=after_namespace,
                )
            )
        self.release = helm.release(
            f"{name}-release",
            helm.PinnedChart(RELEASE_NAME, CHART, CHART_VERSION, CHART_REPO),
            namespace=MONITORING_NAMESPACE,
            values=stack_values(
                config,
                region,
                grafana=home_cluster,
                receiver=home_cluster and global_view(config),
                send_to=args.send_home.receiver if args.send_home else None,
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=release_after)),
        )
        if any(has_gpus(r) for r in regions):
            dcgm = helm.release(
                f"{name}-dcgm",
                helm.PinnedChart(DCGM_NAME, DCGM_CHART, DCGM_CHART_VERSION, DCGM_CHART_REPO),
                namespace=MONITORING_NAMESPACE,
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
