"""The canary drill: a candidate version enters one region under live load, and the region's
canary controller promotes it or rolls it back, as it would in a cluster.

The drill publishes the region's next version the way the localizer publishes any version
(its `localize`, signed with the region's key, the `latest` pointer moved); the region's server
and edges follow `latest`, so with `inference.canary.weight` and `analysis` in the stack config
they take it as the candidate; the users keep sending requests and telling the sites the true
labels; the controller, reading Prometheus, decides. A `bad` candidate is fine-tuned on
shuffled labels and must be rolled back; a `good` one is the same localization under the next
version and must be promoted.

The drill runs in the home region only: it has an edge (so the candidate is judged at a server
and an edge alike), and the regions share this machine's cores, so three drills at once would
measure the machine rather than the candidates.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meridian.local.load import LoadResult, run_load
from meridian.local.prometheus import SCRAPE_INTERVAL_S, PrometheusAPI
from meridian.local.supervisor import LocalStackError
from workloads.canary.analysis import VersionStats
from workloads.contract import GLOBAL_REGION, MODEL_NAME
from workloads.registry.artifact import WEIGHTS_FILE, ArtifactId, Variant
from workloads.registry.store import latest_version

if TYPE_CHECKING:
    from meridian.local.up import LocalFleet

POLL_S = 0.5
# The decision is due within one window plus one interval of the candidate entering (the
# issue's bar); the drill waits three times as long before it calls the controller stuck.
PATIENCE = 3


@dataclass(frozen=True)
class Timeline:
    """The drill's moments, epoch seconds."""

    started: float  # load running, nothing published yet
    published: float  # the localizer pass that published the candidate exited
    entered: float  # the region's server first reported the candidate loaded
    decided: float  # the controller's decision first counted
    settled: float  # the servers apply it


def _applied(region: str, candidate: str, decision: str) -> str:
    """A query with a result once the region's server applies the decision on `candidate`."""
    if decision == "promoted":
        traffic = _version_query("meridian_model_traffic_percent", region, app="server", version=candidate)
        return f"{traffic} == 100"
    loaded = _version_query("meridian_model_version_loaded", region, app="server", version=candidate)
    return f"absent({loaded})"


def next_version(registry_dir: Path, region: str, base: str) -> str:
    """`<base>.<n>`, one past the region's drill versions of `base` (newer than `base` itself,
    so the registry's `latest` pointer moves to it)."""
    drills = [
        int(match.group(1))
        for path in (registry_dir / region / MODEL_NAME).glob(f"{base}.*")
        if (match := re.fullmatch(re.escape(base) + r"\.(\d+)", path.name))
    ]
    return f"{base}.{max(drills, default=0) + 1}"


def _version_query(metric: str, region: str, **labels: str) -> str:
    selectors = ",".join(f'{key}="{value}"' for key, value in {"region": region, **labels}.items())
    return f"{metric}{{{selectors}}}"


class CanaryDrill:
    def __init__(self, fleet: LocalFleet, kind: str):  # kind: "good" or "bad"
        analysis = fleet.config.inference.canary.analysis
        if analysis is None or fleet.config.inference.canary.weight == 0:
            raise LocalStackError(
                "the canary drill needs `inference.canary.weight` > 0 and `inference.canary.analysis` "
                f"in stacks/Pulumi.{fleet.stack}.yaml"
            )
        self.fleet = fleet
        self.kind = kind
        self.analysis = analysis
        self.region = fleet.config.home
        self.prometheus = PrometheusAPI(fleet.prometheus_url)

    @property
    def deadline_s(self) -> int:
        """The issue's bar: decided within one analysis window plus one interval."""
        return self.analysis.window_seconds + self.analysis.interval_seconds

    def run(self, examples: dict[str, Any], seed: int) -> dict[str, Any]:
        fleet, region = self.fleet, self.region
        stable = self._stable()
        base = latest_version(fleet.plan.store(GLOBAL_REGION), MODEL_NAME, GLOBAL_REGION, Variant.FP32)
        if base is None:
            raise LocalStackError("the canary drill needs a global model: none is published")
        candidate = next_version(fleet.registry_dir, region, base)
        sites = [site for site in fleet.sites() if site.region == region]
        caller = fleet.caller()
        stop = threading.Event()
        load: dict[str, LoadResult] = {}

        def users() -> None:
            load["result"] = run_load(
                sites, examples, requests_per_metro=40, caller=caller, users_per_metro=1, seed=seed, until=stop
            )

        worker = threading.Thread(target=users, name="canary-load", daemon=True)
        started = time.time()
        worker.start()
        try:
            weights = (
                fleet.registry_dir / GLOBAL_REGION / ArtifactId(MODEL_NAME, base, GLOBAL_REGION, Variant.FP32).path
            )
            fleet.supervisor.run(
                f"canary-candidate-{candidate}",
                fleet.plan.candidate_argv(region, weights / WEIGHTS_FILE, candidate, base, self.kind == "bad"),
                timeout=300,
            )
            published = time.time()
            decisions = _version_query("meridian_canary_decisions_total", region, candidate=candidate) + " > 0"
            decision = self._wait(decisions, "the controller's decision")["metric"]["decision"]
            # What the controller logged and compared, read now, while the window is the one it judged.
            logged = controller_decision(fleet.supervisor.logs / f"canary-{region}.log", candidate)
            stable = logged.get("stable", stable)  # the version the controller judged against
            metrics = measured(fleet.prometheus_url, region, self.analysis.window_seconds, (stable, candidate))
            # Users keep coming until the servers have applied it, and a few scrapes longer, so
            # that the plot shows the split after the decision.
            self._wait(_applied(region, candidate, decision), "the servers to apply the decision")
            time.sleep(3 * SCRAPE_INTERVAL_S)
        finally:
            stop.set()
            worker.join(timeout=60)
        # When the candidate entered and when the decision came, on Prometheus's clock (the
        # region's server reports the candidate loaded as soon as `latest` moves, before the
        # localizer pass that published it has exited).
        loaded = _version_query(
            "meridian_model_version_loaded", region, app="server", role="candidate", version=candidate
        )
        entered = self._first_seen(loaded, started)
        timeline = Timeline(started, published, entered, self._first_seen(decisions, started), time.time())
        verdict = {"decision": decision, **logged, "metrics": metrics, "stable": stable, "candidate": candidate}
        return self._section(verdict, timeline, load.get("result"))

    def _first_seen(self, expr: str, since: float) -> float:
        series = self.prometheus.query_range(expr, since, time.time(), 1)
        return min(float(s["values"][0][0]) for s in series if s["values"])

    def _stable(self) -> str:
        import httpx

        url = f"https://127.0.0.1:{self.fleet.server_ports[self.region]}/v2/models/{MODEL_NAME}"
        caller = self.fleet.caller()
        return str(
            httpx.get(url, headers=caller.headers, verify=caller.tls(), timeout=10).json()["parameters"]["stable"]
        )

    def _wait(self, expr: str, what: str) -> dict[str, Any]:
        """The first series of `expr`, polling Prometheus until there is one."""
        patience = PATIENCE * self.deadline_s + 60
        give_up = time.time() + patience
        while time.time() < give_up:
            for crashed in self.fleet.supervisor.crashed():
                raise LocalStackError(f"while waiting for {what}: {crashed}")
            if result := self.prometheus.query(expr):
                return result[0]
            time.sleep(POLL_S)
        raise LocalStackError(
            f"canary drill: no {what} within {patience} s "
            f"(`{expr}` at {self.prometheus.url}); see {self.fleet.supervisor.logs}/canary-{self.region}.log"
        )

    def _section(self, verdict: dict[str, Any], timeline: Timeline, load: LoadResult | None) -> dict[str, Any]:
        """report.json's `canary`: what entered, what the controller decided and on what evidence,
        how long it took, what the users saw, and the traffic split over time (for the plot)."""
        served = [o for o in (load.outcomes if load else []) if o.error is None]
        seen = {
            version: {
                "requests": len(mine),
                "accuracy": sum(o.correct for o in mine) / len(mine),
            }
            for version in sorted({o.version for o in served if o.version})
            if (mine := [o for o in served if o.version == version])
        }
        traffic = self.prometheus.query_range(
            f"max by (version) ({_version_query('meridian_model_traffic_percent', self.region, app='server')})",
            timeline.started - 5,
            time.time(),
            1,
        )
        return {
            "region": self.region,
            "kind": self.kind,
            "stable": verdict["stable"],
            "candidate": verdict["candidate"],
            "decision": verdict["decision"],
            "reason": verdict.get("reason"),
            "evidence": verdict.get("evidence"),
            "metrics": verdict["metrics"],
            "analysis": self.analysis.model_dump(by_alias=True),
            "seconds_to_decide": timeline.decided - timeline.entered,
            "deadline_seconds": self.deadline_s,
            "seen_by_users": seen,
            "failed_requests": len(load.errors) if load else None,
            "traffic_percent": {
                series["metric"].get("version", "?"): [
                    [float(t) - timeline.started, float(v)] for t, v in series["values"]
                ]
                for series in traffic
            },
            "timeline": {  # seconds into the drill
                "published": timeline.published - timeline.started,
                "entered": timeline.entered - timeline.started,
                "decided": timeline.decided - timeline.started,
                "settled": timeline.settled - timeline.started,
            },
        }


# The controller's decision line (workloads/canary/controller.py logs it with the evidence).
_DECISION_LINE = re.compile(
    r"canary decision: (?P<decision>\S+) (?P<candidate>\S+) of model \S+ in \S+ \(stable (?P<stable>\S+)\): "
    r"(?P<reason>.*?); evidence: (?P<evidence>.*)$"
)


def controller_decision(log: Path, candidate: str) -> dict[str, str]:
    """What the controller logged when it decided on `candidate`: decision, stable, reason and
    evidence (every number it compared, with its threshold); empty if the log has no such line."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        match = _DECISION_LINE.search(line)
        if match and match["candidate"] == candidate:
            return {key: match[key] for key in ("decision", "stable", "reason", "evidence")}
    return {}


def measured(
    prometheus: str, region: str, window: int, versions: tuple[str, str]
) -> dict[str, dict[str, float | None]]:
    """Each version's numbers over the window, with the controller's own queries
    (workloads/canary/prometheus.py), as the report's `metrics`."""
    import httpx

    from workloads.canary.prometheus import measure

    async def read() -> dict[str, VersionStats]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await measure(client, prometheus, region=region, model=MODEL_NAME, window=window, versions=versions)

    def numbers(v: VersionStats) -> dict[str, float | None]:
        values = {**asdict(v), "error_rate": v.error_rate, "accuracy": v.accuracy, "agreement": v.agreement}
        return {name: None if math.isnan(value) else value for name, value in values.items()}  # JSON has no NaN

    stats = asyncio.run(read())
    return {role: numbers(stats[version]) for role, version in zip(("stable", "candidate"), versions, strict=True)}
