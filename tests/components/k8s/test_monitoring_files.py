"""The rule files and dashboards of monitoring/ as cluster objects: one PrometheusRule per rule
file, valid against the pinned operator's schema; one labelled ConfigMap per dashboard; files
that are not what their directory promises are refused before anything is registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.config import load_stack
from components.k8s.monitoring_files import MonitoringFiles, MonitoringFilesArgs, dashboard_files, rule_files
from components.k8s.target import Target
from meridian.mocks import run_under_mocks
from tests.components import custom_resources
from tests.components.k8s.manifests import api_version_and_kind, manifest

AVAILABILITY = {
    "groups": [
        {
            "name": "meridian-availability",
            "interval": "30s",
            "rules": [
                {
                    "record": "meridian:inference_errors:ratio_rate5m",
                    "expr": 'sum by (region) (rate(meridian_inference_requests_total{status=~"5.."}[5m]))'
                    " / sum by (region) (rate(meridian_inference_requests_total[5m]))",
                },
                {
                    "alert": "MeridianAvailabilityBudgetBurn",
                    "expr": "meridian:inference_errors:ratio_rate5m > 14.4 * 0.001",
                    "for": "2m",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "errors burn the budget", "runbook": "monitoring/runbooks.md#burn"},
                },
            ],
        }
    ]
}
GPU = {
    "groups": [{"name": "meridian-gpu", "rules": [{"alert": "GpuMemoryPressure", "expr": "DCGM_FI_DEV_FB_FREE < 1"}]}]
}


def _write(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return directory


def _objects(rules_dir: Path, dashboards_dir: Path, *, rules: bool = True, dashboards: bool = True) -> list[dict]:
    config = load_stack("dev")

    def program() -> None:
        target = Target(
            config=config,
            region=config.home_region,
            namespace=pulumi.Output.from_input("meridian-us-east-1"),
            namespace_name="meridian-us-east-1",
            provider=k8s.Provider("cluster"),
            stack_labels={},
        )
        MonitoringFiles(
            "files",
            MonitoringFilesArgs(
                target=target, rules=rules, dashboards=dashboards, rules_dir=rules_dir, dashboards_dir=dashboards_dir
            ),
        )

    return [
        manifest(r.type, r.inputs)
        for r in run_under_mocks(program).resources
        if api_version_and_kind(r.type) is not None
    ]


def test_each_rule_file_becomes_one_prometheus_rule_that_the_operator_accepts(tmp_path: Path) -> None:
    # YAML and JSON alike: a rule file is YAML, JSON is YAML
    rules_dir = _write(tmp_path / "rules", {"slo_availability.yaml": json.dumps(AVAILABILITY), "gpu.yml": GPU})
    objects = _objects(rules_dir, tmp_path / "none")
    rules = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PrometheusRule"}
    assert sorted(rules) == ["gpu", "slo-availability"]
    assert rules["slo-availability"]["spec"] == AVAILABILITY
    assert rules["gpu"]["apiVersion"] == "monitoring.coreos.com/v1"
    for rule in rules.values():
        assert rule["metadata"]["namespace"] == "meridian-us-east-1"
        custom_resources.validate(rule)


def test_the_vendored_schema_refuses_a_misspelled_rule_field(tmp_path: Path) -> None:
    """Strict: the operator's structural pruning would drop `expression` without a word."""
    misspelled = {"groups": [{"name": "g", "rules": [{"alert": "A", "expression": "up == 0"}]}]}
    (rule,) = _objects(_write(tmp_path / "rules", {"a.yaml": misspelled}), tmp_path / "none")
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(rule)


def test_a_file_that_is_not_a_rule_file_is_refused(tmp_path: Path) -> None:
    rules_dir = _write(tmp_path / "rules", {"test.yaml": "rule_files: [a.yaml]\ntests: []\n"})
    with pytest.raises(ValueError, match="not a Prometheus rule file"):
        rule_files(rules_dir)


def test_each_dashboard_becomes_a_configmap_the_grafana_sidecar_loads(tmp_path: Path) -> None:
    fleet = {"title": "Fleet overview", "uid": "meridian-fleet", "panels": []}
    dashboards_dir = _write(tmp_path / "dashboards", {"fleet_overview.json": fleet, "README.md": "not a dashboard"})
    (config_map,) = [o for o in _objects(tmp_path / "none", dashboards_dir) if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "dashboard-fleet-overview"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["fleet_overview.json"]) == fleet


def test_a_dashboard_that_is_not_a_json_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a dashboard is a JSON object"):
        dashboard_files(_write(tmp_path / "dashboards", {"list.json": "[]"}))


def test_only_what_the_region_carries_is_registered(tmp_path: Path) -> None:
    """Rules once per cluster, dashboards at home only: the flags decide."""
    rules_dir = _write(tmp_path / "rules", {"gpu.yaml": GPU})
    dashboards_dir = _write(tmp_path / "dashboards", {"edge.json": {"title": "Edge"}})
    assert _objects(rules_dir, dashboards_dir, rules=False, dashboards=False) == []
    kinds = sorted(o["kind"] for o in _objects(rules_dir, dashboards_dir, dashboards=False))
    assert kinds == ["PrometheusRule"]
