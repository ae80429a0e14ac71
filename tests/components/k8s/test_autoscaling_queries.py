"""The ScaledObjects' Prometheus queries, evaluated by a real Prometheus engine (`promtool test
rules`): each reads its own Deployment's series only, and answers 0, not NaN, without traffic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.k8s.autoscaling import ScalingPolicy

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian/Ubuntu: apt-get install prometheus)"
)

SERVER = ScalingPolicy(1, 4, 32, 500, {"region": "us-east-1", "app": "server"})
EDGE = ScalingPolicy(2, 4, 8, 300, {"region": "us-east-1", "app": "edge", "site": "nyc"})


def _promtool_test(tmp_path: Path, series: list[dict[str, str]], expected: dict[str, float]) -> None:
    rules = {
        "groups": [
            {
                "name": "scaling",
                "rules": [
                    {"record": "server_in_flight", "expr": SERVER.in_flight_query},
                    {"record": "server_p99", "expr": SERVER.p99_query},
                    {"record": "edge_in_flight", "expr": EDGE.in_flight_query},
                    {"record": "edge_p99", "expr": EDGE.p99_query},
                ],
            }
        ]
    }
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": record, "eval_time": "10m", "exp_samples": [{"labels": record, "value": value}]}
                    for record, value in expected.items()
                ],
            }
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert PROMTOOL is not None
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _buckets(labels: str, counts: dict[str, int]) -> list[dict[str, str]]:
    """A histogram whose buckets grow by `counts[le]` per 30 s scrape (cumulative counts)."""
    return [
        {"series": f'meridian_inference_request_duration_seconds_bucket{{{labels},le="{le}"}}', "values": f"0+{n}x40"}
        for le, n in counts.items()
    ]


def test_each_query_reads_its_own_deployments_series_only(tmp_path: Path) -> None:
    here, edge = 'region="us-east-1",app="server"', 'region="us-east-1",app="edge",site="nyc"'
    series = [
        # in flight: two server pods (3 + 5), an edge pod of nyc (2), of another site (40), another region (100)
        {"series": f'meridian_inference_in_flight{{{here},model="m",pod="a"}}', "values": "3x40"},
        {"series": f'meridian_inference_in_flight{{{here},model="m",pod="b"}}', "values": "5x40"},
        {"series": f'meridian_inference_in_flight{{{edge},model="m",pod="c"}}', "values": "2x40"},
        {
            "series": 'meridian_inference_in_flight{region="us-east-1",app="edge",site="mia",model="m"}',
            "values": "40x40",
        },
        {"series": 'meridian_inference_in_flight{region="eu-west-1",app="server",model="m"}', "values": "100x40"},
        # latency: the server's requests all in (0.1, 0.5] -> p99 = 0.1 + 0.4 * 0.99; the edge's in
        # (0.05, 0.1] -> 0.05 + 0.05 * 0.99; another region's all above 2 s
        *_buckets(here, {"0.1": 0, "0.5": 10, "2": 10, "+Inf": 10}),
        *_buckets(edge, {"0.05": 0, "0.1": 10, "+Inf": 10}),
        *_buckets('region="eu-west-1",app="server"', {"0.1": 0, "0.5": 0, "2": 0, "+Inf": 10}),
    ]
    expected = {"server_in_flight": 8, "edge_in_flight": 2, "server_p99": 0.496, "edge_p99": 0.0995}
    _promtool_test(tmp_path, series, expected)


def test_without_traffic_the_queries_read_zero_not_nan(tmp_path: Path) -> None:
    """No series yet (a fresh region), or no request in the window: no pressure, no error
    (an error would count towards KEDA's fallback)."""
    idle = _buckets('region="us-east-1",app="server"', {"0.1": 0, "0.5": 0, "+Inf": 0})
    expected = {"server_in_flight": 0, "edge_in_flight": 0, "server_p99": 0, "edge_p99": 0}
    _promtool_test(tmp_path, idle, expected)
