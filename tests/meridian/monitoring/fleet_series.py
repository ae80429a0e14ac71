"""Two hours of a healthy fleet's metrics, as OpenMetrics text for `promtool tsdb
create-blocks-from openmetrics`: every family the rules and the dashboards read, with the
labels the contract gives them (workloads/contract.py: target labels `region`, `app`, edges
`site`; the SuperLink's federated series their own `region`, the participant). Counters grow
at steady rates and histograms follow fixed latency profiles, so every query has data and no
alert has cause to fire.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workloads.contract import MODEL_NAME, MetricsApp

HOME = "us-east-1"
REGIONS = (HOME, "europe-west4", "ap-southeast-1")
EDGE_SITES = {HOME: "nyc", "europe-west4": "ams"}  # ap-southeast-1 has no edge site
STABLE, CANDIDATE = "20261129.120000", "20261130.060000"
HISTORY_S = 2 * 3600
STEP_S = 30
ROUND_S = 300  # a federated round every five minutes


def _serving_constant(name: str) -> tuple[float, ...]:
    """A constant of workloads/serving/metrics.py, read from its source: that module needs
    prometheus_client, which the Pulumi side's environment does not have."""
    tree = ast.parse((Path(__file__).parents[3] / "workloads/serving/metrics.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


LATENCY_BOUNDS = _serving_constant("LATENCY_BUCKETS")  # the servers' histogram buckets
# Share of answers at or under each bound: servers answer in ~10 ms, edges escalate some.
SERVER_PROFILE = (0.0, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.9995, 1.0, 1.0, 1.0)
EDGE_PROFILE = (0.05, 0.2, 0.5, 0.7, 0.8, 0.85, 0.9, 0.97, 0.995, 0.9995, 1.0, 1.0)
FIT_BOUNDS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
FIT_PROFILE = (0.0, 0.0, 0.1, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0)

Series = Callable[[float], float]  # seconds since the start of the history -> value


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: Series


def counter(per_second: float) -> Series:
    return lambda t: per_second * t


def gauge(value: float) -> Series:
    return lambda _t: value


def rounds(t: float) -> float:
    return float(int(t // ROUND_S))


def histogram(
    name: str,
    labels: Mapping[str, str],
    per_second: float,
    bounds: tuple[float, ...],
    profile: tuple[float, ...],
    mean_s: float,
) -> list[Sample]:
    buckets = [
        Sample(f"{name}_bucket", {**labels, "le": f"{bound:g}"}, counter(per_second * share))
        for bound, share in zip(bounds, profile, strict=True)
    ]
    return [
        *buckets,
        Sample(f"{name}_bucket", {**labels, "le": "+Inf"}, counter(per_second)),
        Sample(f"{name}_count", labels, counter(per_second)),
        Sample(f"{name}_sum", labels, counter(per_second * mean_s)),
    ]


def _target(region: str, app: MetricsApp, instance: str, **extra: str) -> dict[str, str]:
    return {"region": region, "app": app.value, "job": app.value, "instance": instance, **extra}


def _serving(target: dict[str, str], per_second: float, profile: tuple[float, ...]) -> list[Sample]:
    by_version = {**target, "model": MODEL_NAME}
    stable, candidate = {**by_version, "version": STABLE}, {**by_version, "version": CANDIDATE}
    statuses = {
        "200": per_second * 0.9994,
        "500": per_second * 0.0001,
        "429": per_second * 0.0002,
        "400": per_second * 0.0003,
    }
    return [
        *(
            Sample("meridian_inference_requests_total", {**stable, "status": s}, counter(r))
            for s, r in statuses.items()
        ),
        *histogram("meridian_inference_request_duration_seconds", stable, per_second, LATENCY_BOUNDS, profile, 0.012),
        Sample("meridian_inference_queue_depth", stable, gauge(3)),
        Sample("meridian_inference_in_flight", by_version, gauge(5)),
        Sample("meridian_model_version_loaded", {**stable, "role": "stable"}, gauge(1)),
        Sample("meridian_model_version_loaded", {**candidate, "role": "candidate"}, gauge(1)),
        Sample("meridian_model_traffic_percent", stable, gauge(90)),
        Sample("meridian_model_traffic_percent", candidate, gauge(10)),
        Sample("meridian_model_reloads_total", {**by_version, "outcome": "loaded"}, lambda t: 1 + t // 3600),
    ]


def _region(region: str, index: int) -> list[Sample]:
    server = _target(region, MetricsApp.SERVER, f"10.{index}.0.10:9300")
    samples = _serving(server, 50, SERVER_PROFILE)
    targets = [server]
    if region in EDGE_SITES:
        edge = _target(region, MetricsApp.EDGE, f"10.{index}.1.10:9300", site=EDGE_SITES[region])
        targets.append(edge)
        samples += _serving(edge, 20, EDGE_PROFILE)
        answers = {"local": 14.0, "cache": 2.0, "region": 3.95, "fallback": 0.05}
        samples += [
            Sample("meridian_edge_answers_total", {**edge, "source": s}, counter(r)) for s, r in answers.items()
        ]
        samples += [
            Sample("meridian_edge_escalations_total", edge, counter(4)),
            Sample("meridian_edge_cache_hits_total", edge, counter(2)),
            Sample("meridian_edge_upstream_errors_total", {**edge, "reason": "timeout"}, counter(0.05)),
            Sample("meridian_edge_breaker_open", edge, gauge(0)),
        ]
    node = _target(region, MetricsApp.SUPERNODE, f"10.{index}.2.10:9300")
    canary = _target(region, MetricsApp.CANARY, f"10.{index}.3.10:9300")
    targets += [node, canary]
    samples += [
        Sample("meridian_training_rounds_total", node, rounds),
        Sample("meridian_training_last_round", node, rounds),
        Sample("meridian_training_local_loss", node, lambda t: 1.0 / (1 + t / 3600)),
        Sample("meridian_training_examples_total", node, lambda t: 6000 * rounds(t)),
        Sample("meridian_training_uplink_bytes_total", node, lambda t: 250_000 * rounds(t)),
        *histogram("meridian_training_fit_seconds", node, 1 / ROUND_S, FIT_BOUNDS, FIT_PROFILE, 8.0),
        Sample(
            "meridian_canary_decisions_total",
            {**canary, "model": MODEL_NAME, "candidate": STABLE, "decision": "promoted"},
            gauge(1),
        ),
    ]
    for gpu in ("0", "1"):
        dcgm = _target(
            region,
            MetricsApp.GPU,
            f"10.{index}.4.10:9400",
            Hostname=f"gpu-{region}-1",
            gpu=gpu,
            UUID=f"GPU-{index}{gpu}",
            modelName="NVIDIA L4",
            namespace=f"meridian-{region}",
            pod=f"inference-{gpu}",
        )
        samples += [
            Sample("DCGM_FI_DEV_GPU_UTIL", dcgm, gauge(60)),
            Sample("DCGM_FI_DEV_FB_USED", dcgm, gauge(9000)),
            Sample("DCGM_FI_DEV_FB_FREE", dcgm, gauge(14000)),
        ]
        targets.append(dcgm)
    samples += [Sample("up", t, gauge(1)) for t in targets]
    return samples


def _home() -> list[Sample]:
    """The ServerApp's series: the run's own (the home's target `region`) and per participant."""
    link = _target(HOME, MetricsApp.SUPERLINK, "10.0.5.10:9400")
    samples = [
        Sample("meridian_federated_round", link, rounds),
        Sample("meridian_federated_global_accuracy", link, lambda t: 0.9 - 0.3 / (1 + t / 3600)),
        Sample("meridian_federated_global_loss", link, lambda t: 1.0 / (1 + t / 3600)),
        Sample("meridian_federated_aggregated_regions", link, gauge(len(REGIONS))),
        *histogram("meridian_federated_round_seconds", link, 1 / ROUND_S, FIT_BOUNDS, FIT_PROFILE, 12.0),
        Sample("up", link, gauge(1)),
    ]
    for region in REGIONS:
        participant = {**link, "region": region}
        samples += [
            Sample("meridian_federated_region_accuracy", participant, lambda t: 0.88 - 0.3 / (1 + t / 3600)),
            Sample("meridian_federated_uplink_bytes_total", participant, lambda t: 250_000 * rounds(t)),
            Sample("meridian_federated_downlink_bytes_total", participant, lambda t: 1_000_000 * rounds(t)),
            Sample("meridian_federated_rejected_updates_total", participant, gauge(0)),
            Sample("meridian_federated_failed_replies_total", participant, gauge(0)),
        ]
    return samples


def fleet() -> list[Sample]:
    return [s for i, region in enumerate(REGIONS) for s in _region(region, i)] + _home()


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def openmetrics(end_s: float) -> Iterator[str]:
    """The history ending at `end_s` (Unix seconds), one series after another, oldest first."""
    start = end_s - HISTORY_S
    for sample in sorted(fleet(), key=lambda s: s.name):
        labels = _labels(sample.labels)
        for step in range(HISTORY_S // STEP_S + 1):
            t = step * STEP_S
            yield f"{sample.name}{labels} {float(sample.value(t))!r} {start + t:.3f}\n"
    yield "# EOF\n"
