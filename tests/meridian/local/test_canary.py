"""The canary drill's bookkeeping: the next version it publishes, and the report section it
leaves (the drill itself runs in tests/e2e/test_local_stack.py)."""

from __future__ import annotations

import json
from pathlib import Path

from meridian.local.canary import controller_decision, next_version
from meridian.local.load import LoadResult
from meridian.local.report import CANARY_PLOT, RunFacts, update_canary, write_report
from workloads.registry.store import version_order

BASE = "20261130.101500"


def test_the_next_version_follows_the_global_one_and_every_earlier_drill(tmp_path: Path) -> None:
    versions = tmp_path / "local-us" / "meridian"
    versions.mkdir(parents=True)
    (versions / BASE).mkdir()
    assert next_version(tmp_path, "local-us", BASE) == f"{BASE}.1"
    for drill in ("1", "2", "10"):
        (versions / f"{BASE}.{drill}").mkdir()
    assert next_version(tmp_path, "local-us", BASE) == f"{BASE}.11"
    # Newer than all of them, so the registry's `latest` pointer moves to it.
    assert version_order(f"{BASE}.11") > max(version_order(p.name) for p in versions.iterdir())


def test_a_drill_on_the_running_fleet_replaces_the_reports_canary_section_and_plot(tmp_path: Path) -> None:
    facts = RunFacts(
        stack="local",
        task="digits",
        strategy="fedavg",
        compression="int8",
        parameters=26122,
        rounds=[],
        localization={},
        loaded={},
        timings={},
        canary={"skipped": "--canary off"},
    )
    write_report(facts, LoadResult(), tmp_path)
    assert "Not run: --canary off." in (tmp_path / "report.md").read_text()
    assert not (tmp_path / CANARY_PLOT).exists()
    section = {
        "region": "local-us",
        "kind": "bad",
        "stable": BASE,
        "candidate": f"{BASE}.2",
        "decision": "rolled_back",
        "reason": "accuracy dropped",
        "evidence": "requests candidate=60 stable=180 (min 20); ...",
        "metrics": {
            role: {
                "requests": requests,
                "errors": 0.0,
                "p99_seconds": 0.004,
                "agree": agree,
                "disagree": disagree,
                "correct": correct,
                "incorrect": labelled - correct,
                "error_rate": 0.0,
                "accuracy": correct / labelled,
                "agreement": None if role == "stable" else agree / (agree + disagree),
            }
            for role, requests, agree, disagree, correct, labelled in (
                ("stable", 180.0, 0.0, 0.0, 170.0, 180.0),
                ("candidate", 60.0, 20.0, 40.0, 19.0, 60.0),
            )
        },
        "seconds_to_decide": 12.0,
        "deadline_seconds": 35,
        "seen_by_users": {BASE: {"requests": 300, "accuracy": 0.96}, f"{BASE}.2": {"requests": 100, "accuracy": 0.3}},
        "traffic_percent": {BASE: [[0, 100], [5, 75], [20, 100]], f"{BASE}.2": [[5, 25], [20, 0]]},
        "timeline": {"published": 3.0, "entered": 5.0, "decided": 17.0},
    }
    update_canary(tmp_path, section)
    assert json.loads((tmp_path / "report.json").read_text())["canary"] == section
    assert (tmp_path / CANARY_PLOT).stat().st_size > 1000
    markdown = (tmp_path / "report.md").read_text()
    assert f"candidate `{BASE}.2` against stable `{BASE}` in local-us: **rolled_back**" in markdown
    assert f"![{CANARY_PLOT}]({CANARY_PLOT})" in markdown
    assert f"| {BASE}.2 (candidate) | 60 | 0.0% | 4.0 | 31.7% (60) | 33.3% (60) |" in markdown


def test_the_controllers_decision_line_gives_the_reason_and_its_evidence(tmp_path: Path) -> None:
    log = tmp_path / "canary-local-us.log"
    # As workloads/canary/controller.py logs it (logging's format from workloads/canary/__main__.py).
    line = (
        "2026-11-30 10:01:02,003 WARNING workloads.canary: canary decision: {} {} of model meridian in local-us "
        "(stable {}): {}; evidence: requests candidate=60 stable=180 (min 20); window 30s"
    )
    log.write_text(
        "\n".join(
            [
                line.format("promoted", f"{BASE}.1", BASE, "errors, latency and accuracy within bounds"),
                "2026-11-30 10:01:07,000 INFO workloads.canary: candidate x vs stable y: no decision",
                line.format("rolled_back", f"{BASE}.2", f"{BASE}.1", "accuracy drop 0.6500 > 0.05"),
            ]
        )
    )
    assert controller_decision(log, f"{BASE}.2") == {
        "decision": "rolled_back",
        "stable": f"{BASE}.1",
        "reason": "accuracy drop 0.6500 > 0.05",
        "evidence": "requests candidate=60 stable=180 (min 20); window 30s",
    }
    assert controller_decision(log, f"{BASE}.1")["decision"] == "promoted"
    assert controller_decision(log, f"{BASE}.3") == {}
    assert controller_decision(tmp_path / "missing.log", BASE) == {}
