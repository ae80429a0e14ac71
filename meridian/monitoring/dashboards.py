"""The Grafana dashboards, built with grafana-foundation-sdk (Grafana's dashboards-as-code SDK).

Three dashboards, each with a `region` variable: the fleet overview (serving, per region), the
federated training, and the edges. Every panel says in its description which question it
answers (the README lists them). The JSON goes to monitoring/dashboards/, which the clusters
deliver through kube-prometheus-stack's dashboard sidecar; a test runs every panel's query
against a real Prometheus. The queries read the contract's series (workloads/contract.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from meridian.monitoring.slos import SLOS, Sli
from workloads.contract import MetricsApp

REGION = 'region=~"$region"'
RATE = "$__rate_interval"  # Grafana's: at least four scrape intervals
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


class Kind(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"
    TABLE = "table"  # instant queries, one row per series
    STATE = "state-timeline"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    answers: str  # the question the panel answers: its description in Grafana
    queries: tuple[Query, ...]
    kind: Kind = Kind.TIMESERIES
    unit: str = "short"
    width: int = 12


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    about: str
    region_from: str  # the metric whose `region` values the variable offers
    panels: tuple[Panel, ...]


def _by_region(metric: str, selector: str, by: str = "region") -> str:
    return f"sum by ({by}) (rate({metric}{{{selector},{REGION}}}[{RATE}]))"


def _quantile(q: float, app: MetricsApp, by: str = "region") -> Query:
    buckets = f'meridian_inference_request_duration_seconds_bucket{{app="{app}",{REGION}}}'
    return Query(
        f"histogram_quantile({q:g}, sum by ({by}, le) (rate({buckets}[{RATE}])))", f"p{q * 100:g} {{{{{by}}}}}"
    )


def _slo_ratio(app: MetricsApp, sli: Sli) -> Query:
    slo = next(s for s in SLOS if s.app is app and s.sli is sli)
    return Query(slo.error_ratio(RATE, f",{REGION}"), "{{region}}")


def _per_round(counter: str) -> str:
    """Bytes a region sent or received per round it trained in, over the last hour."""
    rounds = f"sum by (region) (increase(meridian_training_rounds_total{{{REGION}}}[1h])) > 0"
    return f"sum by (region) (increase({counter}{{{REGION}}}[1h])) / ({rounds})"


SERVER = f'app="{MetricsApp.SERVER}"'
EDGE = f'app="{MetricsApp.EDGE}"'
ANSWERS = "meridian_edge_answers_total"
ALL_SOURCES, AT_THE_EDGE, LOCAL_OR_CACHE = 'source!=""', 'source!="region"', 'source=~"local|cache"'

FLEET = Dashboard(
    uid="meridian-fleet",
    title="Meridian / Fleet overview",
    about="Serving per region: traffic, latency, errors, the edges' share, the model in service, the GPUs.",
    region_from="meridian_inference_requests_total",
    panels=(
        Panel(
            "Requests per second",
            "How much traffic does each region's inference server take?",
            (Query(_by_region("meridian_inference_requests_total", SERVER), "{{region}}"),),
            unit="reqps",
        ),
        Panel(
            "Latency p50 / p99",
            "How fast do the regional servers answer (inside the server)?",
            (_quantile(0.5, MetricsApp.SERVER), _quantile(0.99, MetricsApp.SERVER)),
            unit="s",
        ),
        Panel(
            "Error ratio (5xx and 429)",
            "Which share of requests fails the availability SLO (99.9%)?",
            (_slo_ratio(MetricsApp.SERVER, Sli.AVAILABILITY),),
            unit="percentunit",
        ),
        Panel(
            "Slow answers (over 250 ms)",
            "Which share of answers misses the latency SLO's bound (99% within 250 ms)?",
            (_slo_ratio(MetricsApp.SERVER, Sli.LATENCY),),
            unit="percentunit",
        ),
        Panel(
            "Edge share of answers",
            "Which share of the edges' answers never reached the region (local, cache, fallback)?",
            (
                Query(
                    f"{_by_region(ANSWERS, AT_THE_EDGE)} / {_by_region(ANSWERS, ALL_SOURCES)}",
                    "{{region}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "In flight and queued",
            "How much work waits in each region's servers (what KEDA scales on)?",
            (
                Query(f"sum by (region) (meridian_inference_in_flight{{{SERVER},{REGION}}})", "in flight {{region}}"),
                Query(f"sum by (region) (meridian_inference_queue_depth{{{SERVER},{REGION}}})", "queued {{region}}"),
            ),
        ),
        Panel(
            "Model versions in service",
            "Which model version does each region serve, as stable or as candidate?",
            (
                Query(
                    f"max by (region, app, version, role) (meridian_model_version_loaded{{{REGION}}} == 1)",
                ),
            ),
            kind=Kind.TABLE,
        ),
        Panel(
            "Traffic split by version",
            "Which share of unpinned traffic goes to each loaded version (the canary split)?",
            (
                Query(
                    f"max by (region, version) (meridian_model_traffic_percent{{{SERVER},{REGION}}})",
                    "{{region}} {{version}}",
                ),
            ),
            unit="percent",
        ),
        Panel(
            "GPU utilisation per pod",
            "How busy are the GPUs, and which pods use them?",
            (Query(f"avg by (region, namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{REGION}}})", "{{region}} {{pod}}"),),
            unit="percent",
        ),
        Panel(
            "GPU memory in use",
            "How close is each region's GPU memory to full (out-of-memory risk)?",
            (
                Query(
                    f"sum by (region) (DCGM_FI_DEV_FB_USED{{{REGION}}})"
                    f" / (sum by (region) (DCGM_FI_DEV_FB_USED{{{REGION}}}) + sum by (region) (DCGM_FI_DEV_FB_FREE{{{REGION}}}))",
                    "{{region}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Canary decisions (last 24h)",
            "Which candidates did the canary analysis promote or roll back?",
            (
                Query(
                    f"sum by (region, candidate, decision) (increase(meridian_canary_decisions_total{{{REGION}}}[1d]))",
                    "{{region}} {{candidate}} {{decision}}",
                ),
            ),
            width=24,
        ),
    ),
)

TRAINING = Dashboard(
    uid="meridian-training",
    title="Meridian / Federated training",
    about="The federated run at home (rounds, accuracy, bytes, rejections) and each region's SuperNode.",
    region_from="meridian_federated_region_accuracy",
    panels=(
        Panel(
            "Round",
            "Which round did the run complete last?",
            (Query("max(meridian_federated_round)"),),
            Kind.STAT,
            width=6,
        ),
        Panel(
            "Regions aggregated",
            "How many regions took part in the last round?",
            (Query("max(meridian_federated_aggregated_regions)"),),
            Kind.STAT,
            width=6,
        ),
        Panel(
            "Global accuracy",
            "How good is the global model on the test set?",
            (Query("max(meridian_federated_global_accuracy)", "global"),),
            unit="percentunit",
        ),
        Panel(
            "Accuracy per region",
            "How good is the global model on each region's data?",
            (Query(f"max by (region) (meridian_federated_region_accuracy{{{REGION}}})", "{{region}}"),),
            unit="percentunit",
        ),
        Panel(
            "Bytes per round, up and down",
            "How many bytes does each region send (compressed update) and receive (model) per round?",
            (
                Query(_per_round("meridian_federated_uplink_bytes_total"), "up {{region}}"),
                Query(_per_round("meridian_federated_downlink_bytes_total"), "down {{region}}"),
            ),
            unit="bytes",
        ),
        Panel(
            "Rejected updates and failed replies (last hour)",
            "Which regions' updates failed validation, or never came back?",
            (
                Query(
                    f"sum by (region) (increase(meridian_federated_rejected_updates_total{{{REGION}}}[1h]))",
                    "rejected {{region}}",
                ),
                Query(
                    f"sum by (region) (increase(meridian_federated_failed_replies_total{{{REGION}}}[1h]))",
                    "failed {{region}}",
                ),
            ),
        ),
        Panel(
            "Round duration p50 / p90 (last hour)",
            "How long does a round take, slowest region included?",
            tuple(
                Query(
                    f"histogram_quantile({q:g}, sum by (le) (increase(meridian_federated_round_seconds_bucket[1h])))",
                    f"p{q * 100:g}",
                )
                for q in (0.5, 0.9)
            ),
            unit="s",
        ),
        Panel(
            "Last round trained per region",
            "Which round did each region's SuperNode train last (a region behind the run is missing)?",
            (Query(f"max by (region) (meridian_training_last_round{{{REGION}}})", "{{region}}"),),
        ),
        Panel(
            "SuperNode local loss",
            "Is each region's local training converging?",
            (Query(f"max by (region) (meridian_training_local_loss{{{REGION}}})", "{{region}}"),),
        ),
        Panel(
            "SuperNode fit seconds (mean, last hour)",
            "How long does each region's local training take per round?",
            (
                Query(
                    f"sum by (region) (increase(meridian_training_fit_seconds_sum{{{REGION}}}[1h]))"
                    f" / sum by (region) (increase(meridian_training_fit_seconds_count{{{REGION}}}[1h]))",
                    "{{region}}",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Examples trained (last hour)",
            "How much data does each region train on?",
            (Query(f"sum by (region) (increase(meridian_training_examples_total{{{REGION}}}[1h]))", "{{region}}"),),
        ),
    ),
)

BY_SITE = "region, site"
EDGES = Dashboard(
    uid="meridian-edge",
    title="Meridian / Edges",
    about="The edge sites: what they answer themselves, what they escalate, and their path to the region.",
    region_from="meridian_edge_answers_total",
    panels=(
        Panel(
            "Answers by source",
            "Where do the edges' answers come from: local model, cache, region, fallback?",
            (Query(_by_region(ANSWERS, ALL_SOURCES, f"{BY_SITE}, source"), "{{site}} {{source}}"),),
            unit="reqps",
        ),
        Panel(
            "Answered locally",
            "Which share of requests does each edge answer without its region (model or cache)?",
            (
                Query(
                    f"{_by_region(ANSWERS, LOCAL_OR_CACHE, BY_SITE)} / {_by_region(ANSWERS, ALL_SOURCES, BY_SITE)}",
                    "{{region}} {{site}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Escalations",
            "How many requests does each edge forward to its region?",
            (Query(_by_region("meridian_edge_escalations_total", EDGE, BY_SITE), "{{region}} {{site}}"),),
            unit="reqps",
        ),
        Panel(
            "Upstream errors by reason",
            "Why do escalations to the region fail?",
            (
                Query(
                    _by_region("meridian_edge_upstream_errors_total", EDGE, f"{BY_SITE}, reason"), "{{site}} {{reason}}"
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "Circuit breaker to the region",
            "When was each edge's breaker open (region unreachable, every answer local)?",
            (Query(f"max by ({BY_SITE}) (meridian_edge_breaker_open{{{REGION}}})", "{{region}} {{site}}"),),
            Kind.STATE,
        ),
        Panel(
            "Cache hit ratio",
            "Which share of requests does each edge answer from its cache?",
            (
                Query(
                    f"{_by_region('meridian_edge_cache_hits_total', EDGE, BY_SITE)}"
                    f" / {_by_region('meridian_inference_requests_total', EDGE, BY_SITE)}",
                    "{{region}} {{site}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Edge latency p50 / p99",
            "How fast do the edges answer, escalations included?",
            (_quantile(0.5, MetricsApp.EDGE, BY_SITE), _quantile(0.99, MetricsApp.EDGE, BY_SITE)),
            unit="s",
        ),
        Panel(
            "Edge model versions",
            "Which quantized model version does each edge serve?",
            (Query(f"max by ({BY_SITE}, version, role) (meridian_model_version_loaded{{{EDGE},{REGION}}} == 1)"),),
            Kind.TABLE,
        ),
    ),
)

DASHBOARDS = (FLEET, TRAINING, EDGES)


def _panel(spec: Panel) -> dashboard.Panel | timeseries.Panel | stat.Panel | table.Panel | statetimeline.Panel:
    builder = {
        Kind.TIMESERIES: timeseries.Panel,
        Kind.STAT: stat.Panel,
        Kind.TABLE: table.Panel,
        Kind.STATE: statetimeline.Panel,
    }[spec.kind]()
    builder.title(spec.title).description(spec.answers).unit(spec.unit).span(spec.width).height(8)
    builder.datasource(DATASOURCE)
    for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).ref_id(ref).datasource(DATASOURCE)
        if spec.kind is Kind.TABLE:
            target.instant().format(PromQueryFormat.TABLE)
        else:
            target.range().legend_format(query.legend or "__auto")
        builder.with_target(target)
    return builder


def build(spec: Dashboard) -> dashboard.Dashboard:
    region = (
        dashboard.QueryVariable("region")
        .label("Region")
        .datasource(DATASOURCE)
        .query(f"label_values({spec.region_from}, region)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    board = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.about)
        .tags(["meridian"])
        .time("now-6h", "now")
        .refresh("1m")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(region)
    )
    for panel in spec.panels:
        board.with_panel(_panel(panel))
    return board


def catalogue() -> str:
    """monitoring/DASHBOARDS.md: every dashboard and the question each panel answers."""
    lines = [
        "# Dashboards",
        "",
        "Generated by `make rules` from meridian/monitoring/dashboards.py. Each has a `region` variable",
        "(all regions, or some); each panel's description in Grafana is the question it answers.",
    ]
    for spec in DASHBOARDS:
        lines += ["", f"## {spec.title} (`monitoring/dashboards/{spec.uid}.json`)", "", spec.about, ""]
        lines += [f"- **{panel.title}**: {panel.answers}" for panel in spec.panels]
    return "\n".join(lines) + "\n"


def render() -> dict[str, str]:
    """monitoring/dashboards/<uid>.json for every dashboard, and their catalogue."""
    return {"monitoring/DASHBOARDS.md": catalogue()} | {
        f"monitoring/dashboards/{spec.uid}.json": json.dumps(
            build(spec).build(), cls=JSONEncoder, indent=2, sort_keys=True
        )
        + "\n"
        for spec in DASHBOARDS
    }
