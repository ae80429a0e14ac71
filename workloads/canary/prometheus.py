"""The region's live numbers per model version, read from Prometheus's HTTP API (PromQL).

Every series the servers and edges export carries the target labels `region` and `app`
(workloads/contract.py), so one selector picks the region's inference fleet whichever
Prometheus scrapes it (the cluster's, or the local stack's).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import httpx

from workloads.canary.analysis import VersionStats
from workloads.contract import MetricsApp

# The apps whose answers are judged: both serve every version (fp32 and int8 variants).
JUDGED_APPS = (MetricsApp.SERVER, MetricsApp.EDGE)


class PrometheusError(Exception):
    """Prometheus did not answer a query usably."""


def _queries(region: str, model: str, window: int) -> dict[str, str]:
    selector = f'region="{region}",app=~"{"|".join(JUDGED_APPS)}",model="{model}"'
    w = f"{window}s"
    return {
        "requests": f"sum by (version) (increase(meridian_inference_requests_total{{{selector}}}[{w}]))",
        "errors": f'sum by (version) (increase(meridian_inference_requests_total{{{selector},status=~"5.."}}[{w}]))',
        "p99_seconds": (
            "histogram_quantile(0.99, sum by (version, le) "
            f"(rate(meridian_inference_request_duration_seconds_bucket{{{selector}}}[{w}])))"
        ),
        "agreement": f"sum by (version, outcome) (increase(meridian_canary_agreement_total{{{selector}}}[{w}]))",
        "feedback": f"sum by (version, outcome) (increase(meridian_feedback_total{{{selector}}}[{w}]))",
    }


async def measure(
    client: httpx.AsyncClient, prometheus: str, *, region: str, model: str, window: int, versions: tuple[str, ...]
) -> dict[str, VersionStats]:
    """`versions`' numbers over the last `window` seconds (zeros where a version has none)."""
    fields: dict[str, dict[str, float]] = defaultdict(dict)
    for name, query in _queries(region, model, window).items():
        for labels, value in await _vector(client, prometheus, query):
            version = labels.get("version", "")
            if name in ("agreement", "feedback"):
                field = labels.get("outcome", "")
                if field not in ("agree", "disagree", "correct", "incorrect"):
                    continue
            else:
                field = name
            if not math.isnan(value) or field == "p99_seconds":
                fields[version][field] = value
    return {version: VersionStats(**fields.get(version, {})) for version in versions}


async def _vector(client: httpx.AsyncClient, prometheus: str, query: str) -> list[tuple[dict[str, str], float]]:
    try:
        response = await client.get(f"{prometheus.rstrip('/')}/api/v1/query", params={"query": query})
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as err:
        raise PrometheusError(f"querying {prometheus}: {type(err).__name__}: {err}") from None
    if response.status_code != 200 or body.get("status") != "success":
        raise PrometheusError(f"{prometheus} answered {response.status_code}: {body.get('error', response.text[:200])}")
    return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]
