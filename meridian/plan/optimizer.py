"""The layout as a mixed-integer program, solved by HiGHS (highspy, pinned in requirements.txt).

Variables: open_s (binary) per candidate site, nodes_s (integer) per site, share_ms (0..1) of
metro m's peak served by site s, only where s meets m's SLO and residency (`Problem.allowed`):
demand is split where latency allows. Constraints: every metro fully served; each site's nodes
cover its share of the peak with headroom; a closed site has no nodes, an open one at least one
(every region keeps a GPU node for the edge's escalations and training; an edge site a node);
an edge site opens its parent region; at most `max_gpus` GPUs; at most `budget_usd` $/hour.
Objectives: `cost` ($/hour), `carbon` (kgCO2/hour), `latency` (demand-weighted p95, ms). Each
breaks ties with a second one at TIE_BREAK per unit (cost by latency, the others by cost), so
of two equal layouts the faster (or cheaper) is chosen, and a site that an equal layout could do
without is not chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import highspy

from meridian.plan.sites import Kind, Site

TIE_BREAK = 1e-4  # per ms of weighted p95 (cost) or per $/hour (carbon, latency)
MIP_REL_GAP = 1e-7  # HiGHS's default (1e-4) would stop short of the brute-force optimum


class Objective(StrEnum):
    COST = "cost"
    LATENCY = "latency"
    CARBON = "carbon"


@dataclass(frozen=True)
class Problem:
    """What the optimizer needs: sites, each metro's peak, and which site may serve which metro."""

    sites: Sequence[Site]
    demand_rps: Sequence[float]  # per metro
    allowed: Sequence[Sequence[bool]]  # [metro][site]: meets the SLO and the metro's residency
    p95_ms: Sequence[Sequence[float]]  # [metro][site]
    rps_per_node: Sequence[float]  # per site
    headroom: float
    objective: Objective = Objective.COST
    budget_usd: float | None = None  # $/hour, `constant_usd` included
    max_gpus: int | None = None
    constant_usd: float = 0.0  # what every layout pays (home extras, global CDN)
    closed: frozenset[int] = field(default_factory=frozenset)  # sites that may not open

    def parent(self, s: int) -> int | None:
        """An edge site's region among the candidates (None: the region is not a candidate)."""
        site = self.sites[s]
        return next(
            (
                i
                for i, r in enumerate(self.sites)
                if r.kind is Kind.REGION and r.cloud is site.cloud and r.region == site.region
            ),
            None,
        )


@dataclass(frozen=True)
class Solution:
    nodes: tuple[int, ...]  # per site; 0 = closed
    share: tuple[tuple[float, ...], ...]  # [metro][site]
    usd: float  # $/hour, constant included
    kg: float  # kgCO2/hour
    gpus: int
    weighted_p95_ms: float
    objective: float

    @property
    def open(self) -> list[int]:
        return [s for s, n in enumerate(self.nodes) if n > 0]


def evaluate(problem: Problem, nodes: Sequence[int], share: Sequence[Sequence[float]]) -> Solution:
    """Totals and objective of a layout: the same arithmetic for the MILP and for any check of it."""
    sites = problem.sites
    usd = problem.constant_usd + sum(sites[s].open_usd + sites[s].node_usd * n for s, n in enumerate(nodes) if n)
    kg = sum(sites[s].open_kg + sites[s].node_kg * n for s, n in enumerate(nodes) if n)
    gpus = sum(sites[s].gpus_per_node * n for s, n in enumerate(nodes))
    total = sum(problem.demand_rps)
    weighted = (
        sum(
            problem.demand_rps[m] * problem.p95_ms[m][s] * share[m][s]
            for m in range(len(problem.demand_rps))
            for s in range(len(sites))
            if share[m][s] > 0
        )
        / total
    )
    value = {
        Objective.COST: usd + TIE_BREAK * weighted,
        Objective.CARBON: kg + TIE_BREAK * usd,
        Objective.LATENCY: weighted + TIE_BREAK * usd,
    }[problem.objective]
    return Solution(tuple(nodes), tuple(tuple(row) for row in share), usd, kg, gpus, weighted, value)


def _node_bounds(problem: Problem) -> list[int]:
    """The most nodes each site could need: all the demand it may serve, or its config bound."""
    bounds = []
    for s, site in enumerate(problem.sites):
        may = sum(rps for rps, row in zip(problem.demand_rps, problem.allowed, strict=True) if row[s])
        bounds.append(min(site.max_nodes, max(1, math.ceil((1 + problem.headroom) * may / problem.rps_per_node[s]))))
    return bounds


def solve(problem: Problem) -> Solution | None:
    """The optimal layout, or None when no layout meets every constraint."""
    sites, rps = problem.sites, problem.demand_rps
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
    # presolve costs more than it saves on programs this small (the global example: 0.48 CPU-s
    # per solve with it, 0.15 without)
    h.setOptionValue("presolve", "off")
    bounds = _node_bounds(problem)
    opened = [h.addBinary() for _ in sites]
    nodes = [h.addIntegral(lb=0, ub=bound) for bound in bounds]
    share = {
        (m, s): h.addVariable(lb=0, ub=1)
        for m in range(len(rps))
        for s in range(len(sites))
        if problem.allowed[m][s] and s not in problem.closed
    }
    for m in range(len(rps)):
        h.addConstr(sum((v for (mm, _), v in share.items() if mm == m), h.expr(0)) == 1)
    for (_, s), v in share.items():
        h.addConstr(v <= opened[s])  # redundant, but it tightens the relaxation many times over
    for s, site in enumerate(sites):
        load = sum((rps[m] * v for (m, ss), v in share.items() if ss == s), h.expr(0))
        h.addConstr(problem.rps_per_node[s] * nodes[s] >= (1 + problem.headroom) * load)
        h.addConstr(nodes[s] <= bounds[s] * opened[s])
        h.addConstr(nodes[s] >= opened[s])
        if s in problem.closed:
            h.addConstr(opened[s] == 0)
        if site.kind is Kind.EDGE:
            parent = problem.parent(s)
            if parent is None:
                h.addConstr(opened[s] == 0)
            else:
                h.addConstr(opened[s] <= opened[parent])
    usd = problem.constant_usd + sum(
        (site.open_usd * opened[s] + site.node_usd * nodes[s] for s, site in enumerate(sites)), h.expr(0)
    )
    if problem.max_gpus is not None:
        h.addConstr(sum((site.gpus_per_node * nodes[s] for s, site in enumerate(sites)), h.expr(0)) <= problem.max_gpus)
    if problem.budget_usd is not None:
        h.addConstr(usd <= problem.budget_usd)
    total = sum(rps)
    p95 = sum((rps[m] * problem.p95_ms[m][s] / total * v for (m, s), v in share.items()), h.expr(0))
    if problem.objective is Objective.COST:
        goal = usd + TIE_BREAK * p95
    elif problem.objective is Objective.CARBON:
        kg = sum((site.open_kg * opened[s] + site.node_kg * nodes[s] for s, site in enumerate(sites)), h.expr(0))
        goal = kg + TIE_BREAK * usd
    else:
        goal = p95 + TIE_BREAK * usd
    h.minimize(goal)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    node_counts = [round(h.val(n)) for n in nodes]
    shares = [[0.0] * len(sites) for _ in rps]
    for (m, s), v in share.items():
        shares[m][s] = max(0.0, h.val(v))
    return evaluate(problem, node_counts, shares)
