"""Prometheus scraping by pod annotations.

Chosen over a ServiceMonitor because annotations need nothing installed: a ServiceMonitor
is a prometheus-operator CRD, and applying one to a cluster without the operator fails the
whole deployment, while every common Prometheus setup (kube-prometheus-stack with its
`kubernetes-pods` job, the Prometheus Helm chart, Grafana Agent/Alloy, the OpenTelemetry
collector's prometheus receiver) discovers `prometheus.io/*` annotated pods. The servers'
metrics share their HTTP port, which their NetworkPolicy already opens; the federated run's
metrics (served by the ServerApp inside the SuperLink pod) have their own port, open to the
cluster's pods only. Flower itself exports no Prometheus metrics.
"""

from __future__ import annotations

from workloads import contract

# kube-prometheus-stack, installed per cluster in its own namespace with every name prefixed
# `monitoring` (fullnameOverride), so what reads Prometheus (KEDA's triggers, the canary
# controller) can name it before it exists.
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_URL = f"http://monitoring-prometheus.{MONITORING_NAMESPACE}.svc:9090"


def scrape_annotations(port: int = contract.HTTP_PORT, path: str = contract.METRICS_PATH) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": path,
        "prometheus.io/scheme": "http",
    }
