"""KEDA, which runs the ScaledObjects of components/k8s/autoscaling.py, as a pinned Helm release
per cluster in a namespace of its own.

Where: every cluster that runs Meridian's servers; regions that share an existing cluster
share one KEDA (the first region on it owns the release) and it watches their namespaces only.
It brings its CRDs (the chart's `crds.install`), so the ScaledObjects wait for the release.

Least privilege, as far as the chart allows (kedacore/charts keda/values.yaml at 2.20.2):
- `watchNamespace`: the Meridian namespaces on the cluster (comma-separated), not all of them;
- `rbac.enabledCustomScaledRefKinds: false`: we scale Deployments only, which the chart grants
  by itself; left on, it grants get/patch/update of `*/scale` on every API group;
- `permissions.*.restrict.secret: true`: the operator and the metrics server read Secrets in
  their own namespace only (their certificates); our triggers need no credentials
  (TriggerAuthentication), Prometheus is reached in the cluster;
- the admission webhooks stay on: they reject a ScaledObject that would fight another over a
  Deployment, or one that an HPA already scales.
Its pods already satisfy the Pod Security `restricted` standard (non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp, no host network): the
namespace enforces it. The chart's NetworkPolicies stay off (their API-server rule admits pods
only, and the managed control planes answer from outside the pod network); ours deny by
default and then allow each of the three Deployments what it needs, by the `app` label the
chart gives its pods: the API server (TCP 443/6443, at private addresses we cannot name), the
operator's Prometheus queries (the `monitoring` namespace, 9090), the metrics server's gRPC to
the operator (9666), and the API server's calls in on CONTROL_PLANE_PORT.
KEDA's metrics server is the cluster's `external.metrics.k8s.io` API: nothing else may claim it.

The API server calls KEDA's metrics server (the APIService) and its webhooks on pod ports.
A private GKE cluster's control plane reaches nodes and pods on tcp 443 and 10250 only (the
`gke-<cluster>-<id>-master` firewall rule; cloud.google.com/service-mesh/docs/private-cluster-open-port,
read 2026-11-30), so both listen on CONTROL_PLANE_PORT instead of 6443 and 9443: no firewall
rule to add, and the same everywhere (EKS's cluster security group admits all ports; no host
network, so no clash with the kubelet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import Region, StackConfig
from components.k8s import helm
from components.k8s import network_policy as netpol
from components.k8s.clusters import cluster_regions
from components.k8s.labels import metadata
from components.k8s.monitoring import MONITORING_NAMESPACE
from components.k8s.namespace import POD_SECURITY_LEVEL, namespace_name, pod_security_labels

CHART = "keda"
CHART_VERSION = "2.20.2"  # chart and KEDA; the ScaledObject schema is checked at this tag (tests)
CHART_REPO = "https://kedacore.github.io/charts"
RELEASE_NAME = "keda"
NAMESPACE = "keda"
CONTROL_PLANE_PORT = 10250
OPERATOR_GRPC_PORT = 9666  # keda/templates/manager/deployment.yaml: the metrics server reads metrics here
API_SERVER_PORTS = (443, 6443)
PROMETHEUS_PORT = 9090
# The `app` label of each of the chart's pods (operator.name, webhooks.name defaults).
OPERATOR = {"app": "keda-operator"}
METRICS_SERVER = {"app": "keda-operator-metrics-apiserver"}
WEBHOOKS = {"app": "keda-admission-webhooks"}


def keda_values(watch_namespaces: list[str]) -> dict[str, object]:
    return {
        "watchNamespace": ",".join(watch_namespaces),
        "service": {"portHttpsTarget": CONTROL_PLANE_PORT},
        "webhooks": {"port": CONTROL_PLANE_PORT},
        "rbac": {"enabledCustomScaledRefKinds": False},
        "permissions": {
            "operator": {"restrict": {"secret": True}},
            "metricServer": {"restrict": {"secret": True}},
        },
    }


@dataclass(frozen=True)
class KedaArgs:
    config: StackConfig
    region: Region  # a region that owns_cluster (clusters.py)
    provider: k8s.Provider
    labels: Mapping[str, str]


class Keda(pulumi.ComponentResource):
    release: k8s.helm.v3.Release  # ScaledObjects depend on it: it installs their CRD

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:Keda", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=metadata(
                NAMESPACE,
                None,
                {**args.labels, **pod_security_labels(POD_SECURITY_LEVEL, args.config.kubernetes_version)},
            ),
            opts=on_cluster,
        )
        self.release = helm.release(
            f"{name}-release",
            helm.PinnedChart(RELEASE_NAME, CHART, CHART_VERSION, CHART_REPO),
            namespace=namespace.metadata.name,
            values=keda_values([namespace_name(r.name) for r in cluster_regions(args.config, args.region)]),
            opts=on_cluster,
        )
        self._network_policies(name, namespace.metadata.name, dict(args.labels), on_cluster)
        self.register_outputs({"status": self.release.status})

    @staticmethod
    def _network_policies(
        name: str, namespace: pulumi.Output[str], labels: dict[str, str], opts: pulumi.ResourceOptions
    ) -> None:
        netpol.default_deny(f"{name}-default-deny", namespace, labels, opts)
        # The control plane answers and calls from private addresses (EKS's ENIs in the VPC,
        # GKE's peered control-plane range, an existing cluster's own network), never the internet.
        private = [
            netpol.NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
            for cidr in netpol.PRIVATE_RANGES
        ]
        api_server = netpol.Rule(private, API_SERVER_PORTS)
        from_api_server = netpol.Rule(private, [CONTROL_PLANE_PORT])
        prometheus = netpol.Rule(
            [
                netpol.NetworkPolicyPeer(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
                    )
                )
            ],
            [PROMETHEUS_PORT],
        )
        for suffix, selector, ingress, egress in (
            ("operator", OPERATOR, [netpol.Rule([netpol.pods(METRICS_SERVER)], [OPERATOR_GRPC_PORT])], [prometheus]),
            (
                "metrics-server",
                METRICS_SERVER,
                [from_api_server],
                [netpol.Rule([netpol.pods(OPERATOR)], [OPERATOR_GRPC_PORT])],
            ),
            ("webhooks", WEBHOOKS, [from_api_server], []),
        ):
            netpol.allow(
                f"{name}-{suffix}-netpol",
                f"keda-{suffix}",
                namespace,
                selector,
                labels,
                ingress=ingress,
                egress=[api_server, *egress],
                opts=opts,
            )
