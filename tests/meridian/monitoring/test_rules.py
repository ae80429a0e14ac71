"""The rule files: valid for promtool, every alert proven by a unit test that fires it and one
that does not, every alert with a runbook line, and on a healthy fleet's metrics in a real
Prometheus every recording answers per region and no alert fires."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from meridian.monitoring.cli import ROOT
from tests.meridian.monitoring.conftest import Prometheus

RULES = sorted((ROOT / "monitoring/rules").glob("*.yaml"))
TESTS = sorted((ROOT / "monitoring/tests").glob("*.yaml"))


def _rules(kind: str) -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


ALERTS = _rules("alert")
RECORDINGS = _rules("record")


def _promtool(promtool: str, *args: str) -> None:
    result = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_every_rule_file_passes_promtool_check(promtool: str, path: Path) -> None:
    _promtool(promtool, "check", "rules", str(path))


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_every_rule_unit_test_passes(promtool: str, path: Path) -> None:
    _promtool(promtool, "test", "rules", str(path))


def test_a_rule_that_stops_firing_fails_its_unit_test(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    platform = yaml.safe_load((ROOT / "monitoring/rules/platform.yaml").read_text())
    for rule in platform["groups"][0]["rules"]:
        rule["expr"] = f"({rule['expr']}) > 1e9"  # never true
    (tmp_path / "rules/platform.yaml").write_text(yaml.safe_dump(platform))
    (tmp_path / "tests/platform.yaml").write_text((ROOT / "monitoring/tests/platform.yaml").read_text())
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "tests/platform.yaml")], capture_output=True, check=False
    )
    assert result.returncode != 0


def _cases() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """alertname -> {"fires": [expected alerts...], "quiet": [...]} over every test file."""
    cases: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"fires": [], "quiet": []})
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                cases[check["alertname"]]["fires" if expected else "quiet"].append(check)
    return cases


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not() -> None:
    cases = _cases()
    for alert in ALERTS:
        name = alert["alert"]
        assert cases[name]["fires"], f"{name}: no promtool test in monitoring/tests/ in which it fires"
        assert cases[name]["quiet"], f"{name}: no promtool test in monitoring/tests/ in which it stays quiet"


def test_every_alert_fires_per_region() -> None:
    for name, case in _cases().items():
        for check in case["fires"]:
            for expected in check["exp_alerts"]:
                assert "region" in expected["exp_labels"], f"{name} fires without a region label"


def test_every_alert_has_a_severity_and_a_runbook_line() -> None:
    runbook = (ROOT / "monitoring/RUNBOOK.md").read_text().splitlines()
    for alert in ALERTS:
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["runbook_url"] == f"monitoring/RUNBOOK.md#{name.lower()}"
        heading = runbook.index(f"## {name}")
        assert runbook[heading + 2].strip(), f"{name}: empty runbook line"


def test_on_a_healthy_fleet_every_slo_records_per_region_and_no_alert_fires(prometheus: Prometheus) -> None:
    """The rule files loaded into a real Prometheus over a healthy fleet's metrics."""
    rules = prometheus.evaluated_rules()
    assert {r["name"] for r in rules} == {r.get("alert", r.get("record")) for r in ALERTS + RECORDINGS}
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        assert rule.get("state", "inactive") == "inactive", f"{rule['name']} is {rule['state']}: {rule['alerts']}"
    for rule in RECORDINGS:
        slo = rule["labels"]["slo"]
        recorded = prometheus.query(f'{rule["record"]}{{slo="{slo}"}}')
        assert recorded, f"{rule['record']} of {slo} has no data"
        assert all("region" in series["metric"] for series in recorded)
        assert all(float(series["value"][1]) < 0.01 for series in recorded), recorded
