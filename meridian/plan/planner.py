"""From a demand file to a layout: candidates and latencies into a Problem, the optimizer's
answer into a Plan, and, when there is none, an answer that says why (Infeasible).

Every chosen site says what made it necessary (`forced_by`): the plan is solved again without
it; if that fails, the metros it alone serves within their SLO (or their residency zone), or
the limit that breaks; otherwise how much the objective rises without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from components.catalog import Cloud, Residency
from components.config import Limits, StackConfig, load_stack
from components.locations import Point
from meridian.plan import costs
from meridian.plan.demand import Demand
from meridian.plan.latency import user_latency_ms
from meridian.plan.metros import METROS
from meridian.plan.optimizer import Objective, Problem, Solution, solve
from meridian.plan.sites import Kind, Site, candidates

UNITS = {Objective.COST: "$/hour", Objective.CARBON: "kgCO2/hour", Objective.LATENCY: "ms (weighted p95)"}
SHARE_EPSILON = 1e-6  # shares below this are solver noise, not traffic


class Infeasible(Exception):
    """No layout meets the demand: one line per reason, naming metros, limits and numbers."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("no layout meets the demand:\n" + "\n".join(f"  {r}" for r in reasons))


@dataclass(frozen=True)
class MetroPlan:
    metro: str
    requests_per_second: float
    served_by: dict[str, float]  # site -> share of the metro's peak
    p50_ms: float
    p95_ms: float
    residency: Residency | None  # the zone it is kept in, when the demand asks

    @property
    def point(self) -> Point:
        return METROS[self.metro].point


@dataclass(frozen=True)
class SitePlan:
    site: Site
    nodes: int
    load_rps: float
    forced_by: str
    rps_per_node: float

    @property
    def usd_per_hour(self) -> float:
        return self.site.open_usd + self.site.node_usd * self.nodes

    @property
    def kg_per_hour(self) -> float:
        return self.site.open_kg + self.site.node_kg * self.nodes


@dataclass(frozen=True)
class Plan:
    objective: Objective
    metros: list[MetroPlan]
    sites: list[SitePlan]
    solution: Solution
    home: str
    problem: Problem


@dataclass(frozen=True)
class Base:
    """The stack whose settings the plan keeps (its limits bound the plan), or none."""

    path: Path | None
    config: StackConfig | None

    @property
    def limits(self) -> Limits:
        return self.config.limits if self.config is not None else Limits()


def load_base(path: Path | None) -> Base:
    """`base:` as components/config.py reads it (ConfigError names what is wrong)."""
    if path is None:
        return Base(None, None)
    name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return Base(path, load_stack(name, path.parent))


def _latencies(demand: Demand, sites: list[Site]) -> tuple[list[list[float]], list[list[float]]]:
    """(p50, p95) per [metro][site]: the shared latency model plus the server's own time."""
    serving = demand.serving
    p50: list[list[float]] = []
    p95: list[list[float]] = []
    for entry in demand.metros:
        user = METROS[entry.metro].located
        pairs = [
            user_latency_ms(user, s.located, serving.gpu_p50_ms, serving.gpu_p95_ms)
            if s.kind is Kind.REGION
            else user_latency_ms(user, s.located, serving.edge_p50_ms, serving.edge_p95_ms)
            for s in sites
        ]
        p50.append([a for a, _ in pairs])
        p95.append([b for _, b in pairs])
    return p50, p95


def _budget(demand: Demand, base: Base) -> tuple[float, str]:
    """The tighter of the demand's budget and the base's cost ceiling (which policy check enforces)."""
    caps = [(base.limits.max_usd_per_hour, "limits.maxUsdPerHour" + (" of the base" if base.config else " (default)"))]
    if demand.budget is not None:
        caps.append((demand.budget.max_usd_per_hour, "budget.maxUsdPerHour"))
    return min(caps)


def _allowed(demand: Demand, sites: list[Site], p95: list[list[float]]) -> list[list[bool]]:
    return [
        [
            ms <= demand.slo.p95_ms and (entry.residency is None or site.residency.value == entry.residency)
            for ms, site in zip(row, sites, strict=True)
        ]
        for entry, row in zip(demand.metros, p95, strict=True)
    ]


def _useful(sites: list[Site], allowed: list[list[bool]]) -> list[Site]:
    """Sites that may serve some metro, and the regions of such edge sites: no other can be in
    an optimal layout, and leaving them out keeps the program small."""
    serving = [s for i, s in enumerate(sites) if any(row[i] for row in allowed)]
    parents = {(s.cloud, s.region) for s in serving if s.kind is Kind.EDGE}
    return [s for s in sites if s in serving or (s.kind is Kind.REGION and (s.cloud, s.region) in parents)]


def build_problem(demand: Demand, objective: Objective, clouds: list[Cloud], base: Base) -> Problem:
    every = candidates(clouds, set(base.limits.gpu_allowlist), demand.edge.allowed)
    sites = _useful(every, _allowed(demand, every, _latencies(demand, every)[1]))
    _, p95 = _latencies(demand, sites)
    allowed = _allowed(demand, sites, p95)
    capacity = demand.capacity
    return Problem(
        sites=sites,
        demand_rps=[m.requests_per_second for m in demand.metros],
        allowed=allowed,
        p95_ms=p95,
        rps_per_node=[
            capacity.requests_per_second_per_gpu * s.gpus_per_node
            if s.kind is Kind.REGION
            else capacity.requests_per_second_per_edge_node
            for s in sites
        ],
        headroom=capacity.headroom,
        objective=objective,
        budget_usd=_budget(demand, base)[0],
        max_gpus=base.limits.max_gpus,
        constant_usd=costs.overheads().constant,
    )


def unreachable(demand: Demand, problem: Problem) -> list[str]:
    """Metros no candidate site serves within the SLO (and zone): each with the best it could get."""
    reasons = []
    for m, entry in enumerate(demand.metros):
        if any(problem.allowed[m]):
            continue
        in_zone = [
            s
            for s, site in enumerate(problem.sites)
            if entry.residency is None or site.residency.value == entry.residency
        ]
        if not in_zone:
            reasons.append(f"{entry.metro}: no candidate site in residency zone {entry.residency}")
            continue
        best = min(in_zone, key=lambda s: problem.p95_ms[m][s])
        zone = f" in zone {entry.residency}" if entry.residency else ""
        reasons.append(
            f"{entry.metro}: best p95{zone} is {problem.p95_ms[m][best]:.0f} ms "
            f"({problem.sites[best].name}), over the SLO of {demand.slo.p95_ms:g} ms"
        )
    return reasons


def _why_infeasible(demand: Demand, problem: Problem, budget_label: str) -> list[str]:
    """Every metro can be served, yet no layout fits: which limit, and by how much."""
    unbounded = replace(problem, budget_usd=None, max_gpus=None, objective=Objective.COST)
    cheapest = solve(unbounded)
    if cheapest is None:  # capacity: a site's node bound cannot hold the demand it alone may serve
        return ["the demand exceeds the nodes a site may hold (components/config.py bounds) where the SLO allows"]
    reasons = []
    if problem.max_gpus is not None and cheapest.gpus > problem.max_gpus:
        reasons.append(
            f"limits.maxGpus is {problem.max_gpus}: the cheapest layout meeting the SLO uses {cheapest.gpus} GPUs"
        )
    if problem.budget_usd is not None and cheapest.usd > problem.budget_usd:
        reasons.append(
            f"{budget_label} is ${problem.budget_usd:,.2f}: the cheapest layout meeting the SLO costs "
            f"${cheapest.usd:,.2f}/hour, ${cheapest.usd - problem.budget_usd:,.2f} short"
        )
    return reasons or ["the GPU and budget limits cannot both be met (each alone can)"]


def _forced_by(demand: Demand, problem: Problem, solution: Solution, s: int) -> str:
    without = solve(replace(problem, closed=problem.closed | {s}))
    if without is not None:
        rise = without.objective - solution.objective
        return f"{problem.objective.value}: +{rise:.3g} {UNITS[problem.objective]} without it"
    gone = {s} | {e for e in range(len(problem.sites)) if problem.parent(e) == s}
    alone = [
        m
        for m in range(len(demand.metros))
        if not any(problem.allowed[m][t] for t in range(len(problem.sites)) if t not in gone)
    ]
    if alone:
        names = ", ".join(demand.metros[m].metro for m in alone)
        zoned = [zone for m in alone if (zone := demand.metros[m].residency)]
        if zoned:
            return f"residency ({', '.join(sorted(set(zoned)))}) and slo {demand.slo.p95_ms:g} ms: {names}"
        return f"slo {demand.slo.p95_ms:g} ms: {names}"
    without = solve(replace(problem, closed=problem.closed | {s}))
    if without is not None:
        rise = without.objective - solution.objective
        return f"{problem.objective.value}: +{rise:.3g} {UNITS[problem.objective]} without it"
    return "budget and GPU limits: the other sites cannot carry its load within them"


def _home(solution: Solution, problem: Problem, base: Base) -> str:
    """The base's home when it is kept; else the busiest region, on the base home's cloud if possible."""
    regions = [s for s in solution.open if problem.sites[s].kind is Kind.REGION]
    names = [problem.sites[s].name for s in regions]
    if base.config is not None and base.config.home in names:
        return base.config.home
    home_cloud = base.config.home_region.cloud if base.config is not None else None
    best = max(regions, key=lambda s: (problem.sites[s].cloud is home_cloud, solution.nodes[s], -s))
    return problem.sites[best].name


def plan(demand: Demand, objective: Objective, clouds: list[Cloud], base: Base) -> Plan:
    problem = build_problem(demand, objective, clouds, base)
    reasons = unreachable(demand, problem)
    if reasons:
        raise Infeasible(reasons)
    solution = solve(problem)
    if solution is None:
        raise Infeasible(_why_infeasible(demand, problem, _budget(demand, base)[1]))
    p50, _ = _latencies(demand, list(problem.sites))
    metros = []
    for m, entry in enumerate(demand.metros):
        shares = {s: x for s, x in enumerate(solution.share[m]) if x > SHARE_EPSILON}
        total = sum(shares.values())
        metros.append(
            MetroPlan(
                metro=entry.metro,
                requests_per_second=entry.requests_per_second,
                served_by={problem.sites[s].name: x / total for s, x in shares.items()},
                p50_ms=sum(p50[m][s] * x for s, x in shares.items()) / total,
                p95_ms=max(problem.p95_ms[m][s] for s in shares),
                residency=METROS[entry.metro].residency if entry.residency else None,
            )
        )
    sites = [
        SitePlan(
            site=problem.sites[s],
            nodes=solution.nodes[s],
            load_rps=sum(problem.demand_rps[m] * solution.share[m][s] for m in range(len(demand.metros))),
            forced_by=_forced_by(demand, problem, solution, s),
            rps_per_node=problem.rps_per_node[s],
        )
        for s in solution.open
    ]
    return Plan(objective, metros, sites, solution, _home(solution, problem, base), problem)
