"""The local stack's Prometheus scrapes every local process with the target labels the clusters'
monitors set (`region`, `app`, and `site` for edges), evaluates every rule file under
monitoring/rules, and a real Prometheus accepts the config and scrapes by it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from components.config import load_stack
from meridian.local.prometheus import (
    PrometheusAPI,
    ScrapeTarget,
    prometheus_argv,
    rule_files,
    scrape_config,
    write_config,
)
from meridian.local.up import LocalFleet
from workloads.contract import MetricsApp
from workloads.processes import stop_pids, wait_ready
from workloads.trainer.launch import free_port

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def _fleet(tmp_path: Path) -> LocalFleet:
    return LocalFleet("local", load_stack("local"), tmp_path, quick=True, port_base=8700)


def _labels(targets: list[ScrapeTarget]) -> dict[str, dict[str, str]]:
    return {t.process: t.labels for t in targets}


def test_every_local_process_is_scraped_with_the_clusters_target_labels(tmp_path: Path) -> None:
    targets = _fleet(tmp_path).scrape_targets(training=True)
    assert _labels(targets) == {
        "superlink": {"region": "local-us", "app": "superlink"},  # the home's ServerApp
        **{
            process: {"region": region, "app": app}
            for region in ("local-us", "local-eu", "local-apac")
            for process, app in (
                (f"supernode-{region}", "supernode"),
                (f"server-{region}", "server"),
                (f"canary-{region}", "canary"),
            )
        },
        "edge-nyc": {"region": "local-us", "app": "edge", "site": "nyc"},
        "edge-fra": {"region": "local-eu", "app": "edge", "site": "fra"},
    }


def test_each_process_has_a_metrics_port_of_its_own_apart_from_the_public_ones(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    metrics = [t.port for t in fleet.scrape_targets(training=True)]
    public = [fleet.registry_port, fleet.prometheus_port, *fleet.server_ports.values(), *fleet.edge_ports.values()]
    assert len(set(metrics)) == len(metrics)
    assert not set(metrics) & set(public)
    servers = {s.name: s.env for s in fleet.serving_specs() if s.role in ("server", "edge")}
    assert {name: env["MERIDIAN_METRICS_PORT"] for name, env in servers.items()} == {
        name: str(fleet.metrics_ports[name]) for name in servers
    }


def test_the_server_app_leaves_the_scrape_config_when_training_is_done_its_job_stays(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    during = {t.process for t in fleet.scrape_targets(training=True)}
    after = {t.process for t in fleet.scrape_targets(training=False)}
    assert during - after == {"superlink"}
    jobs = scrape_config(fleet.scrape_targets(training=False), [], fleet.scrape_jobs)["scrape_configs"]
    assert [(job["job_name"], len(job["static_configs"])) for job in jobs] == [
        ("superlink", 0),
        ("supernode", 3),
        ("server", 3),
        ("edge", 2),
        ("canary", 3),
    ]


def test_one_job_per_app_and_only_the_server_app_honours_its_own_region_label(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    config = scrape_config(fleet.scrape_targets(training=True), [], fleet.scrape_jobs)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"superlink", "supernode", "server", "edge", "canary"}
    assert {name for name, job in jobs.items() if job["honor_labels"]} == {"superlink"}
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    edges = jobs["edge"]["static_configs"]
    assert [(c["targets"], c["labels"]["site"]) for c in edges] == [
        ([f"127.0.0.1:{fleet.metrics_ports['edge-nyc']}"], "nyc"),
        ([f"127.0.0.1:{fleet.metrics_ports['edge-fra']}"], "fra"),
    ]


def test_every_rule_file_under_monitoring_rules_is_evaluated(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("slo.yaml", "alerts.yaml", "README.md"):
        (rules / name).write_text("groups: []\n")
    assert rule_files(rules) == [rules / "alerts.yaml", rules / "slo.yaml"]
    assert rule_files(tmp_path / "none") == []
    assert scrape_config([], rule_files(rules), [])["rule_files"] == [
        str(rules / "alerts.yaml"),
        str(rules / "slo.yaml"),
    ]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_config_with_the_repositorys_rule_files(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    config = tmp_path / "prometheus.yml"
    fleet = _fleet(tmp_path)
    write_config(config, fleet.scrape_targets(training=True), rule_files(), fleet.scrape_jobs)
    checked = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_by_the_labels_and_forgets_a_target_that_left(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    registry = CollectorRegistry()
    Counter("meridian_inference_requests", "requests", ["model"], registry=registry).labels("meridian").inc(3)
    exporter = free_port()
    start_http_server(exporter, addr="127.0.0.1", registry=registry)
    edge = ScrapeTarget("edge-nyc", MetricsApp.EDGE, "local-us", exporter, site="nyc")
    gone = ScrapeTarget("superlink", MetricsApp.SUPERLINK, "local-us", free_port())  # nothing listens
    config, port, jobs = tmp_path / "prometheus.yml", free_port(), [MetricsApp.SUPERLINK, MetricsApp.EDGE]
    write_config(config, [edge, gone], [], jobs)
    process = subprocess.Popen(
        prometheus_argv(PROMETHEUS, config, tmp_path / "data", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(process, f"{url}/-/ready", 60)
        api = PrometheusAPI(url)
        scraped = 'meridian_inference_requests_total{region="local-us",app="edge",site="nyc"}'
        assert [float(s["value"][1]) for s in _eventually(api, scraped)] == [3.0]
        assert [s["value"][1] for s in _eventually(api, 'up{app="superlink"}')] == ["0"]
        # The run is over: its target leaves the config, and its `up` goes with it at once.
        write_config(config, [edge], [], jobs)
        api.reload()
        deadline = time.monotonic() + 30
        while api.query('up{app="superlink"}') and time.monotonic() < deadline:
            time.sleep(0.5)
        assert api.query('up{app="superlink"}') == []
        assert [s["value"][1] for s in api.query('up{app="edge"}')] == ["1"]
    finally:
        stop_pids([process.pid])


def _eventually(api: PrometheusAPI, query: str) -> list[dict]:
    deadline = time.monotonic() + 30
    while not (found := api.query(query)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def test_without_prometheus_the_fleet_runs_unwatched_and_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("meridian.local.up.find_prometheus", lambda: None)
    fleet = _fleet(tmp_path)
    roles = {spec.role for spec in fleet.all_specs()}
    assert roles == {"supernode-metrics", "registry", "server", "edge"}  # no prometheus, no controllers
    skipped = fleet.drill("good")["skipped"]
    assert "apt-get install prometheus" in skipped and "brew install prometheus" in skipped
    assert fleet.drill("off") == {"skipped": "--canary off"}
