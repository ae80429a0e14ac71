"""Every alert Meridian raises: what it means, its runbook line, and the series that prove it.

An alert is defined with its scenarios (input series in promtool's notation): at least one in
which it fires, with the labels it fires with, and one in which it stays quiet. rules.py renders
them into promtool unit tests, so an alert cannot exist without a test that fires it and one
that does not. Expressions aggregate `by (region, ...)`: one Prometheus holding several regions (the
local stack, a global view) alerts per region. The target labels `region` and `app` are the
contract's (workloads/contract.py); the SuperLink's federated series carry their own `region`
(the participant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meridian.monitoring.slos import BURN_ALERTS, SLOS, BurnAlert, Severity, Sli, Slo, seconds, slo_file
from workloads.contract import MODEL_NAME, MetricsApp

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Scenario:
    """Input series (selector -> promtool values, one per `interval`) and, at `at`, the
    labels of each firing instance of the alert besides alertname and the rule's own; none
    means the alert is quiet."""

    name: str
    series: Mapping[str, str]
    at: str
    firing: tuple[Labels, ...] = ()
    interval: str = "1m"


@dataclass(frozen=True)
class Alert:
    name: str
    file: str  # monitoring/rules/<file>.yaml
    expr: str
    severity: Severity
    summary: str  # may name `{{ $labels.<label> }}`
    runbook: str  # one line: what to look at first, what to do
    scenarios: tuple[Scenario, ...]
    for_: str = ""
    labels: Labels = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not any(s.firing for s in self.scenarios) or all(s.firing for s in self.scenarios):
            raise ValueError(f"{self.name}: needs a scenario in which it fires and one in which it stays quiet")


def series(name: str, **labels: str) -> str:
    """A series selector in promtool's input notation."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def counted(selector: str, window: str) -> str:
    """Events a counter counted over `window`, per series. A client library creates a labelled
    counter at its first increment (a first rejected reload appears as a new series at 1), which
    increase() cannot see; a series that did not exist `window` ago counts with its value."""
    new = f"({selector} unless {selector} offset {window})"
    return f"\n  increase({selector}[{window}]) unless {new}\n  or {new}\n"


def ramp(per_step: float, steps: int) -> str:
    """A counter growing by `per_step` for `steps` steps, in promtool's notation."""
    return f"0+{per_step:g}x{steps}"


def phases(*parts: tuple[float, int]) -> str:
    """A counter growing by `per_step` for `steps` steps, phase after phase, without a jump."""
    values, last = [], 0.0
    for index, (per_step, steps) in enumerate(parts):
        start = last if index == 0 else last + per_step
        values.append(f"{start:g}+{per_step:g}x{steps if index == 0 else steps - 1}")
        last = start + per_step * (steps if index == 0 else steps - 1)
    return " ".join(values)


US, EU = "us-east-1", "europe-west4"
VERSION = "20261130.090000"
SERVER = {"app": MetricsApp.SERVER.value, "model": MODEL_NAME, "version": VERSION}
EDGE_NYC = {"region": US, "app": MetricsApp.EDGE.value, "site": "nyc"}
REQUESTS_PER_STEP = 1000


def _slo_series(slo: Slo, burn: tuple[tuple[float, int], ...]) -> dict[str, str]:
    """`REQUESTS_PER_STEP` requests per step in two regions: in `US` phases of (error ratio,
    steps), `EU` healthy throughout."""
    steps = sum(n for _, n in burn)
    out: dict[str, str] = {}
    for region, ratios in ((US, burn), (EU, ((0.0, steps),))):
        base = {"region": region, "app": slo.app.value, "model": MODEL_NAME, "version": VERSION}
        good = phases(*((REQUESTS_PER_STEP * (1 - ratio), n) for ratio, n in ratios))
        if slo.sli is Sli.LATENCY:
            good_le = f"{slo.threshold_s:g}"
            out[series("meridian_inference_request_duration_seconds_bucket", **base, le=good_le)] = good
            out[series("meridian_inference_request_duration_seconds_count", **base)] = ramp(REQUESTS_PER_STEP, steps)
        else:
            out[series("meridian_inference_requests_total", **base, status="200")] = good
            out[series("meridian_inference_requests_total", **base, status="500")] = phases(
                *((REQUESTS_PER_STEP * ratio, n) for ratio, n in ratios)
            )
    return out


# The SLO files' promtool step (rules.py): their scenarios span up to three days.
SLO_EVALUATION_INTERVAL = "15m"


def _burn_scenarios(slo: Slo, burn: BurnAlert) -> tuple[Scenario, ...]:
    """Each pair of windows fires on its own (a burn between its factor and the next higher
    pair's, as long as its long window); a burn under every factor stays quiet, and so does a
    burn that stopped longer ago than the short windows (they reset the alert)."""
    fast = burn.severity is Severity.PAGE
    interval = "1m" if fast else SLO_EVALUATION_INTERVAL
    step = seconds(interval)
    fired = ({"region": US, "app": slo.app.value, "slo": slo.name},)
    factors = [r.factor for r in burn.rates]
    scenarios = []
    for index, rate in enumerate(burn.rates):
        factor = rate.factor * 1.4 if index == 0 else (rate.factor + factors[index - 1]) / 2
        steps = seconds(rate.long) // step
        scenarios.append(
            Scenario(
                f"{factor:g}x the budget for {rate.long} ({rate.long}/{rate.short} windows)",
                _slo_series(slo, ((factor * slo.budget, steps),)),
                f"{steps * step // 60}m",
                fired,
                interval,
            )
        )
    top = burn.rates[0]
    under, under_steps = 0.8 * min(factors), seconds(top.long) // step
    stopped_steps = (max(seconds(r.short) for r in burn.rates) + seconds(SLO_EVALUATION_INTERVAL)) // step
    burning = (top.factor * 1.4 * slo.budget, seconds(top.long) // step)
    scenarios += [
        Scenario(
            f"{under:g}x the budget for {top.long}",
            _slo_series(slo, ((under * slo.budget, under_steps),)),
            f"{under_steps * step // 60}m",
            interval=interval,
        ),
        Scenario(
            f"{top.factor * 1.4:g}x for {top.long}, stopped {stopped_steps * step // 60} minutes ago",
            _slo_series(slo, (burning, (0.0, stopped_steps))),
            f"{(burning[1] + stopped_steps) * step // 60}m",
            interval=interval,
        ),
    ]
    return tuple(scenarios)


def _burn_alert(slo: Slo, burn: BurnAlert) -> Alert:
    speed = "fast" if burn.severity is Severity.PAGE else "slowly"
    return Alert(
        name=f"Meridian{slo.title}{burn.suffix}",
        file=slo_file(slo),
        expr=slo.burn_expr(burn),
        severity=burn.severity,
        summary=f"{{{{ $labels.region }}}}: {slo.app} {slo.sli} error budget burning {speed} (SLO: {slo.statement})",
        runbook=(
            f"{' or '.join(f'{r.factor:g}x the budget over {r.long}' for r in burn.rates)}"
            f" (all of 30 days' budget in {' / '.join(f'{30 / r.factor:.1f}' for r in burn.rates)} days)."
            " Fleet dashboard, the region: which version (a new candidate?), which status codes or latency,"
            " since when; roll back a recent version, add capacity for 429s, check the region's GPU nodes."
        ),
        scenarios=_burn_scenarios(slo, burn),
    )


def _slo_alerts() -> list[Alert]:
    return [_burn_alert(slo, burn) for slo in SLOS for burn in BURN_ALERTS]


def _requests_by_status(region: str, per_status: dict[str, float]) -> dict[str, str]:
    return {
        series("meridian_inference_requests_total", region=region, **SERVER, status=status): ramp(count, 30)
        for status, count in per_status.items()
    }


def _edge_answers(local: float, fallback: float) -> dict[str, str]:
    return {
        series("meridian_edge_answers_total", **EDGE_NYC, source="local"): ramp(local, 30),
        series("meridian_edge_answers_total", **EDGE_NYC, source="fallback"): ramp(fallback, 30),
    }


def _gpu(used_gib: float, total_gib: float = 80) -> dict[str, str]:
    gpu = {"region": US, "app": MetricsApp.GPU.value, "Hostname": "gpu-node-1", "gpu": "0"}
    gpu |= {"namespace": f"meridian-{US}", "pod": "inference-0"}
    mib = 1024
    return {
        series("DCGM_FI_DEV_FB_USED", **gpu): f"{used_gib * mib:g}x20",
        series("DCGM_FI_DEV_FB_FREE", **gpu): f"{(total_gib - used_gib) * mib:g}x20",
    }


RELOADS = 'meridian_model_reloads_total{outcome="rejected"}'
FAILED_REPLIES = "meridian_federated_failed_replies_total"
REJECTED_UPDATES = "meridian_federated_rejected_updates_total"
UPLINK = "meridian_federated_uplink_bytes_total"
DECISIONS = 'meridian_canary_decisions_total{decision="rolled_back"}'
SUPERLINK = {"app": MetricsApp.SUPERLINK.value}
CANARY = {"region": US, "app": MetricsApp.CANARY.value, "model": MODEL_NAME, "candidate": VERSION}


def _training_rounds(*, eu_stops_at_step: int | None) -> dict[str, str]:
    """A round every 5 minutes for 90 minutes; each region uploads 1 MB a round, `EU` stops."""
    eu = (
        ramp(1e6, 18)
        if eu_stops_at_step is None
        else f"0+1e6x{eu_stops_at_step} {eu_stops_at_step}e6x{18 - eu_stops_at_step}"
    )
    return {
        series("meridian_federated_round", region=US, **SUPERLINK): ramp(1, 18),
        series(UPLINK, region=US, **SUPERLINK): ramp(1e6, 18),
        series(UPLINK, region=EU, **SUPERLINK): eu,
    }


OTHER_ALERTS = [
    Alert(
        name="MeridianQueueSaturated",
        file="serving",
        expr=(
            'sum by (region, app) (rate(meridian_inference_requests_total{status="429"}[5m]))\n'
            "/ sum by (region, app) (rate(meridian_inference_requests_total[5m])) > 0.02"
        ),
        for_="5m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: {{ $labels.app }} refuses more than 2% of requests with 429 (queue full)",
        runbook=(
            "The batching queue is full: check in-flight and queue depth against replicas on the fleet dashboard;"
            " if KEDA is at maxReplicas raise it (inference.maxReplicas) or the GPU pool's max, else look for a slow"
            " forward pass (p99, GPU use)."
        ),
        scenarios=(
            Scenario(
                "10% of requests refused",
                _requests_by_status(US, {"200": 90, "429": 10}),
                "20m",
                ({"region": US, "app": "server"},),
            ),
            Scenario("0.5% of requests refused", _requests_by_status(US, {"200": 199, "429": 1}), "20m"),
        ),
    ),
    Alert(
        name="MeridianModelReloadRejected",
        file="serving",
        expr=f"sum by (region, app, model) ({counted(RELOADS, '15m')}) > 0",
        severity=Severity.PAGE,
        summary="{{ $labels.region }}: a {{ $labels.app }} refused to load a {{ $labels.model }} artifact (signature)",
        runbook=(
            "An artifact in the region's registry failed Ed25519 verification (tampered, unsigned or signed with"
            " another key); the server keeps its current version. Treat as a security incident: find the object"
            " in the registry's `latest`, compare its digest with the localizer's log, rotate the key if needed."
        ),
        scenarios=(
            Scenario(
                "a rejected reload, the counter's first increment",
                {
                    series(
                        "meridian_model_reloads_total", region=US, app="server", model=MODEL_NAME, outcome="rejected"
                    ): "_x5 1x10"
                },
                "8m",
                ({"region": US, "app": "server", "model": MODEL_NAME},),
            ),
            Scenario(
                "a rejected reload 18 minutes ago",
                {
                    series(
                        "meridian_model_reloads_total", region=US, app="server", model=MODEL_NAME, outcome="rejected"
                    ): "_x2 1x25"
                },
                "20m",
            ),
            Scenario(
                "reloads that loaded",
                {
                    series(
                        "meridian_model_reloads_total", region=US, app="server", model=MODEL_NAME, outcome="loaded"
                    ): "1 1 2 2 3x10"
                },
                "10m",
            ),
        ),
    ),
    Alert(
        name="MeridianCanaryRolledBack",
        file="serving",
        expr=f"sum by (region, model, candidate) ({counted(DECISIONS, '30m')}) > 0",
        severity=Severity.INFO,
        summary="{{ $labels.region }}: candidate {{ $labels.candidate }} of {{ $labels.model }} was rolled back",
        runbook=(
            "The canary analysis judged the candidate worse than stable; its log line and"
            " the canary section of the fleet dashboard hold the evidence. Nothing to do unless every"
            " new version rolls back (then look at the localizer's data or the thresholds in inference.canary.analysis)."
        ),
        scenarios=(
            Scenario(
                "a roll-back",
                {series("meridian_canary_decisions_total", **CANARY, decision="rolled_back"): "_x3 1x10"},
                "5m",
                ({"region": US, "model": MODEL_NAME, "candidate": VERSION},),
            ),
            Scenario(
                "a promotion",
                {series("meridian_canary_decisions_total", **CANARY, decision="promoted"): "_x3 1x10"},
                "5m",
            ),
        ),
    ),
    Alert(
        name="MeridianEdgeFallbackHigh",
        file="edge",
        expr=(
            'sum by (region, site) (rate(meridian_edge_answers_total{source="fallback"}[5m]))\n'
            "/ sum by (region, site) (rate(meridian_edge_answers_total[5m])) > 0.05"
        ),
        for_="5m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}/{{ $labels.site }}: the edge cannot reach its region (over 5% fallback answers)",
        runbook=(
            "Escalations fail, so unsure answers are given locally: read meridian_edge_upstream_errors_total by reason"
            " on the edge dashboard; check the region's inference Service and network path from the edge site."
        ),
        scenarios=(
            Scenario("1 in 6 answers a fallback", _edge_answers(50, 10), "20m", ({"region": US, "site": "nyc"},)),
            Scenario("1 in 50 answers a fallback", _edge_answers(49, 1), "20m"),
        ),
    ),
    Alert(
        name="MeridianEdgeBreakerOpen",
        file="edge",
        expr="max by (region, site) (meridian_edge_breaker_open) > 0",
        for_="2m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}/{{ $labels.site }}: the edge's circuit breaker to its region is open",
        runbook=(
            "The edge stopped escalating after repeated upstream failures and answers everything locally;"
            " as MeridianEdgeFallbackHigh: check the region's servers and the path to them."
        ),
        scenarios=(
            Scenario(
                "open for 8 minutes",
                {series("meridian_edge_breaker_open", **EDGE_NYC): "0 0 1x10"},
                "10m",
                ({"region": US, "site": "nyc"},),
            ),
            Scenario("open for one minute", {series("meridian_edge_breaker_open", **EDGE_NYC): "0 0 1 0x10"}, "10m"),
        ),
    ),
    Alert(
        name="MeridianTrainingRepliesFailing",
        file="training",
        expr=f"sum by (region) ({counted(FAILED_REPLIES, '1h')}) >= 2",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: its SuperNode failed to reply in 2 or more rounds within an hour",
        runbook=(
            "The region's SuperNode timed out or errored in rounds: read its logs and meridian_training_fit_seconds"
            " (slower than the round timeout?), its node's GPU and the TLS path to the SuperLink."
        ),
        scenarios=(
            Scenario(
                "three failures",
                {series(FAILED_REPLIES, region=EU, **SUPERLINK): "_x2 1 2 3x10"},
                "10m",
                ({"region": EU},),
            ),
            Scenario("one failure", {series(FAILED_REPLIES, region=EU, **SUPERLINK): "_x2 1x10"}, "10m"),
        ),
    ),
    Alert(
        name="MeridianTrainingUpdatesRejected",
        file="training",
        expr=f"sum by (region) ({counted(REJECTED_UPDATES, '1h')}) > 0",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: the aggregator rejected its model update",
        runbook=(
            "An update failed validation (workloads/trainer/validation.py: wrong tensors or shapes, non-finite"
            " values, or a norm far outside the round's): a broken or poisoned client. Compare the region's local loss on the training dashboard; check its data push."
        ),
        scenarios=(
            Scenario(
                "a rejected update",
                {series(REJECTED_UPDATES, region=EU, **SUPERLINK): "_x2 1x10"},
                "10m",
                ({"region": EU},),
            ),
            Scenario(
                "updates accepted",
                {
                    series(REJECTED_UPDATES, region=EU, **SUPERLINK): "0x12",
                    series(UPLINK, region=EU, **SUPERLINK): ramp(1e6, 12),
                },
                "10m",
            ),
        ),
    ),
    Alert(
        name="MeridianTrainingRegionMissing",
        file="training",
        expr=(
            f"(sum by (region) (increase({UPLINK}[1d])) > 0)\n"
            f"unless (sum by (region) (increase({UPLINK}[30m])) > 0)\n"
            "and on () (max(changes(meridian_federated_round[30m])) >= 2)"
        ),
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: took part in training today, but sent no update while rounds advance",
        runbook=(
            "The region's SuperNode is gone from the run: is its pod running, does its node-auth key still match"
            " the SuperLink's list, can it reach the Fleet port? Aggregation continues without it while"
            " federation.minRegions is met."
        ),
        scenarios=(
            Scenario("EU stops after an hour", _training_rounds(eu_stops_at_step=12), "90m", ({"region": EU},), "5m"),
            Scenario("every region in every round", _training_rounds(eu_stops_at_step=None), "90m", interval="5m"),
        ),
    ),
    Alert(
        name="MeridianLocalizerFailing",
        file="training",
        # The pipeline's hop into the region's registry (a bucket behind the CDN: no process of
        # ours to scrape) is its localizer CronJob; kube-state-metrics (kube-prometheus-stack)
        # says when a pass last succeeded. "No global model yet" and "up to date" succeed too.
        expr=(
            'label_replace(\n  time() - max by (namespace) (kube_cronjob_status_last_successful_time{cronjob="localizer"})\n'
            '  > 3600,\n  "region", "$1", "namespace", "meridian-(.+)"\n)'
        ),
        for_="5m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: no localizer pass has succeeded for over an hour",
        runbook=(
            "New global versions stop reaching the region's registry, servers and edges: read the last pass"
            " (kubectl -n meridian-<region> get jobs -l app.kubernetes.io/name=localizer, then its logs): a global"
            " model failing verification, the region's data missing, the signing key or the registry bucket"
            " refusing the localizer's identity."
        ),
        scenarios=(
            Scenario(
                "last success 90 minutes ago",
                {
                    series(
                        "kube_cronjob_status_last_successful_time", namespace=f"meridian-{EU}", cronjob="localizer"
                    ): "0x100"
                },
                "90m",
                ({"region": EU, "namespace": f"meridian-{EU}"},),
            ),
            Scenario(
                "a pass succeeds every ten minutes",
                {
                    series(
                        "kube_cronjob_status_last_successful_time", namespace=f"meridian-{EU}", cronjob="localizer"
                    ): ("0+600x10")
                },
                "90m",
                interval="10m",
            ),
        ),
    ),
    Alert(
        name="MeridianGpuMemoryPressure",
        file="platform",
        expr=(
            "max by (region, Hostname, gpu, namespace, pod) (\n"
            "  DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)\n"
            ") > 0.9"
        ),
        for_="10m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has over 90% of its memory in use",
        runbook=(
            "The pod named by the alert's namespace and pod labels is close to CUDA out-of-memory: lower inference.cudaMaxBatchSize or move"
            " the model to a larger GPU type; a leak shows as steady growth on the fleet dashboard's GPU panel."
        ),
        scenarios=(
            Scenario(
                "76 of 80 GiB",
                _gpu(76),
                "15m",
                (
                    {
                        "region": US,
                        "Hostname": "gpu-node-1",
                        "gpu": "0",
                        "namespace": f"meridian-{US}",
                        "pod": "inference-0",
                    },
                ),
            ),
            Scenario("40 of 80 GiB", _gpu(40), "15m"),
        ),
    ),
    Alert(
        name="MeridianTargetDown",
        file="platform",
        expr='max by (region, app, job, instance) (up{app!=""}) == 0',
        for_="5m",
        severity=Severity.TICKET,
        summary="{{ $labels.region }}: {{ $labels.app }} target {{ $labels.instance }} cannot be scraped",
        runbook=(
            "Prometheus cannot reach the workload's metrics port (9300, the ServerApp 9400): the pod is down or"
            " restarting (kubectl get pods -n meridian-<region>), or a network policy blocks the monitoring namespace."
        ),
        scenarios=(
            Scenario(
                "down for 8 minutes",
                {series("up", region=EU, app="edge", job="edge", instance="10.0.0.7:9300", site="fra"): "1 1 0x10"},
                "10m",
                ({"region": EU, "app": "edge", "job": "edge", "instance": "10.0.0.7:9300"},),
            ),
            Scenario(
                "down for two minutes",
                {series("up", region=EU, app="edge", job="edge", instance="10.0.0.7:9300"): "1 0 0 1x10"},
                "10m",
            ),
        ),
    ),
    Alert(
        name="MeridianRegionSilent",
        file="platform",
        # At home, where every other cluster remote-writes: a region whose targets reported an
        # hour ago and report nothing now (its cluster, or the path home, is down). In a region's
        # own Prometheus it cannot fire: its series are its own scrapes.
        expr='count by (region) (up{app!=""} offset 1h) unless count by (region) (up{app!=""})',
        for_="10m",
        severity=Severity.PAGE,
        summary="{{ $labels.region }}: no series reach the home's Prometheus any more",
        runbook=(
            "The region's cluster stopped remote-writing home: check its Prometheus (kubectl -n monitoring logs"
            " prometheus-monitoring-prometheus-0 -c prometheus, remote_write errors), the home's metrics-receiver"
            " Service and its certificate, then the cluster itself; its own Prometheus and Alertmanager still hold"
            " its alerts."
        ),
        scenarios=(
            Scenario(
                "silent for 20 minutes after reporting",
                {series("up", region=EU, app="server", job="server", instance="10.0.0.9:9300"): "1x60 _x30"},
                "85m",
                ({"region": EU},),
            ),
            Scenario(
                "still reporting",
                {series("up", region=EU, app="server", job="server", instance="10.0.0.9:9300"): "1x90"},
                "85m",
            ),
        ),
    ),
]

ALERTS: tuple[Alert, ...] = (*_slo_alerts(), *OTHER_ALERTS)
