"""The dashboards: each offers a region, each panel says what it answers, and every panel's
query, run through a real Prometheus's HTTP API over a fleet's metrics, succeeds with series,
for all regions and for one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from meridian.monitoring.cli import ROOT
from tests.meridian.monitoring.conftest import Prometheus
from tests.meridian.monitoring.fleet_series import HOME

DASHBOARDS = {
    path.stem: json.loads(path.read_text()) for path in sorted((ROOT / "monitoring/dashboards").glob("*.json"))
}
TARGETS = [
    pytest.param(target["expr"], id=f"{uid}: {panel['title']} {target['refId']}")
    for uid, board in DASHBOARDS.items()
    for panel in board["panels"]
    for target in panel["targets"]
]
# What Grafana sends for the variables: "All" is the variable's allValue, one region its name.
ALL_REGIONS = ".*"
RATE_INTERVAL = "2m"  # $__rate_interval: four scrape intervals at Prometheus's default 30s
LABEL_VALUES = re.compile(r"label_values\((\w+), (\w+)\)")


def _variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def substitute(expr: str, region: str) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$region", region)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def test_the_three_dashboards_exist() -> None:
    assert set(DASHBOARDS) == {"meridian-fleet", "meridian-training", "meridian-edge"}


@pytest.mark.parametrize("uid", DASHBOARDS)
def test_each_dashboard_offers_regions_and_each_panel_says_what_it_answers(uid: str) -> None:
    board = DASHBOARDS[uid]
    region = _variables(board)["region"]
    assert region["multi"] and region["includeAll"] and region["allValue"] == ALL_REGIONS
    for panel in board["panels"]:
        assert panel["description"].endswith("?"), f"{panel['title']}: the description is the question it answers"
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


@pytest.mark.parametrize("uid", DASHBOARDS)
def test_the_region_variable_offers_the_fleets_regions(prometheus: Prometheus, uid: str) -> None:
    match = LABEL_VALUES.fullmatch(_variables(DASHBOARDS[uid])["region"]["query"])
    assert match, "the region variable is label_values(<metric>, region)"
    assert HOME in prometheus.label_values(match.group(2), match.group(1))


@pytest.mark.parametrize("region", [ALL_REGIONS, HOME])
@pytest.mark.parametrize("expr", TARGETS)
def test_every_panel_query_returns_series(prometheus: Prometheus, expr: str, region: str) -> None:
    result = prometheus.query(substitute(expr, region))
    assert result, f"no series for {substitute(expr, region)}"
    if region != ALL_REGIONS:
        assert all(series["metric"].get("region", HOME) == HOME for series in result)
