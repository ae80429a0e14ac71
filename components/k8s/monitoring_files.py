"""What `monitoring/` holds, delivered to the clusters: each rule file of monitoring/rules/ as a
PrometheusRule on every cluster (each Prometheus alerts on its own region's series), each
dashboard of monitoring/dashboards/ as a ConfigMap the home's Grafana sidecar loads.

The files are generated and checked in (`make rules`); this module only reads them, so what
promtool tested is byte for byte what the clusters evaluate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.k8s.labels import metadata
from components.k8s.monitoring import DASHBOARD_LABEL, MONITORING_API
from components.k8s.target import Target

MONITORING_DIR = Path(__file__).resolve().parent.parent.parent / "monitoring"
RULES_DIR = MONITORING_DIR / "rules"
DASHBOARDS_DIR = MONITORING_DIR / "dashboards"
CONFIG_MAP_LIMIT = 1024 * 1024  # bytes: what the API server accepts in one ConfigMap
APP = "monitoring"  # the objects' name label


def object_name(stem: str) -> str:
    """A file's stem as a Kubernetes object name (DNS-1123: lowercase, digits, '-')."""
    name = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    if not name:
        raise ValueError(f"{stem!r} gives no Kubernetes object name")
    return name


def rule_files(directory: Path = RULES_DIR) -> dict[str, dict[str, Any]]:
    """Object name -> PrometheusRule spec (the rule file's `groups`), one per *.yml/*.yaml file."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        document = yaml.safe_load(path.read_text())
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("groups"), list)
            or set(document) != {"groups"}
        ):
            raise ValueError(f"{path}: not a Prometheus rule file (a mapping with `groups` only)")
        name = object_name(path.stem)
        if name in out:
            raise ValueError(f"{path}: another rule file is also named {name}")
        out[name] = {"groups": document["groups"]}
    return out


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> dict[str, tuple[str, str]]:
    """Object name -> (file name, JSON text), one per *.json file."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(directory.glob("*.json")):
        text = path.read_text()
        if not isinstance(json.loads(text), dict):
            raise ValueError(f"{path}: a dashboard is a JSON object")
        if len(text.encode()) >= CONFIG_MAP_LIMIT:
            raise ValueError(f"{path}: over the {CONFIG_MAP_LIMIT} bytes a ConfigMap holds")
        name = object_name(path.stem)
        if name in out:
            raise ValueError(f"{path}: another dashboard is also named {name}")
        out[name] = (path.name, text)
    return out


@dataclass(frozen=True, kw_only=True)
class MonitoringFilesArgs:
    target: Target  # the region whose namespace holds them
    rules: bool  # this region carries its cluster's rules (once per cluster)
    dashboards: bool  # the home region: its cluster runs Grafana
    after: Sequence[pulumi.Resource] = ()  # the MonitoringStack release (the CRDs), where this region installs it
    rules_dir: Path = field(default=RULES_DIR)
    dashboards_dir: Path = field(default=DASHBOARDS_DIR)


class MonitoringFiles(pulumi.ComponentResource):
    """The rule files as PrometheusRules and the dashboards as Grafana sidecar ConfigMaps."""

    def __init__(self, name: str, args: MonitoringFilesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:MonitoringFiles", name, None, opts)
        target = args.target
        rules = rule_files(args.rules_dir) if args.rules else {}
        for rule_name, spec in rules.items():
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{rule_name}",
                api_version=MONITORING_API,
                kind="PrometheusRule",
                metadata=metadata(rule_name, target.namespace, target.labels(APP, "rules")),
                spec=spec,
                opts=target.opts(self, args.after),
            )
        dashboards = dashboard_files(args.dashboards_dir) if args.dashboards else {}
        for dashboard_name, (file_name, text) in dashboards.items():
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard_name}",
                metadata=metadata(
                    f"dashboard-{dashboard_name}",
                    target.namespace,
                    {**target.labels(APP, "dashboards"), DASHBOARD_LABEL: "1"},
                ),
                data={file_name: text},
                opts=target.opts(self),
            )
        self.register_outputs({"rules": sorted(rules), "dashboards": sorted(dashboards)})
