"""Monitoring as code: the SLOs, the alerts and the dashboards, defined once in Python.

`python -m meridian monitoring generate` (`make rules`) renders them into monitoring/: Prometheus
rule files and their promtool unit tests, the runbook, and Grafana dashboards as JSON. The
clusters (PrometheusRule objects, the dashboard sidecar's ConfigMaps) and the local stack's
Prometheus load those files; a test fails when they drift from this definition.
"""
