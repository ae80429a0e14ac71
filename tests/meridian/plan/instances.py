"""Small random layout problems, and their optimum found by enumeration rather than by a solver.

Every open-site and node-count vector is tried, cheapest lower bound first; for each, the best
assignment of demand is a min-cost flow (metros -> sites with their capacity), computed here by
successive shortest paths, so nothing of the optimizer's program is reused but its arithmetic
(`evaluate`) and its objectives' definitions.
"""

from __future__ import annotations

import itertools
import math
import random

from components.catalog import Cloud, Residency
from meridian.plan.latency import Located
from meridian.plan.optimizer import TIE_BREAK, Objective, Problem, evaluate
from meridian.plan.sites import Kind, Site

SLO_MS = 60.0
ZONES = (Residency.US, Residency.EU)


def _site(rng: random.Random, name: str, kind: Kind, region: str, zone: Residency) -> Site:
    return Site(
        name=name,
        cloud=Cloud.AWS,
        kind=kind,
        region=region,
        residency=zone,
        located=Located((0.0, 0.0)),
        location=name,
        machine_type="m",
        accelerator=None,
        gpus_per_node=1 if kind is Kind.REGION else 0,
        max_nodes=rng.randint(1, 3),  # small pools, so that demand must split across sites
        open_usd=rng.uniform(0.2, 2.0),
        node_usd=rng.uniform(0.1, 1.5),
        open_kg=rng.uniform(0.0, 0.2),
        node_kg=rng.uniform(0.01, 0.3),
    )


def random_problem(seed: int, objective: Objective) -> Problem:
    """At most 6 candidate sites (regions, and edge sites under them) and 8 metros."""
    rng = random.Random(seed)
    regions = [_site(rng, f"r{i}", Kind.REGION, f"r{i}", rng.choice(ZONES)) for i in range(rng.randint(1, 3))]
    edges = []
    for j in range(rng.randint(0, 6 - len(regions))):
        parent = rng.choice(regions)
        edges.append(_site(rng, f"e{j}", Kind.EDGE, parent.region, parent.residency))
    sites = regions + edges
    metros = rng.randint(1, 8)
    demand = [rng.uniform(20, 150) for _ in range(metros)]
    zone = [rng.choice((None, *ZONES)) for _ in range(metros)]
    p95 = [[rng.uniform(10, 90) for _ in sites] for _ in range(metros)]
    allowed = [
        [p95[m][s] <= SLO_MS and zone[m] in (None, site.residency) for s, site in enumerate(sites)]
        for m in range(metros)
    ]
    for m in range(metros):  # every metro reachable: the optimizer's inputs after planner checks
        if not any(allowed[m]):
            s = rng.randrange(len(sites))
            p95[m][s] = rng.uniform(10, SLO_MS)
            zone[m] = None
            allowed[m][s] = True
            allowed[m] = [p95[m][t] <= SLO_MS for t in range(len(sites))]
    return Problem(
        sites=sites,
        demand_rps=demand,
        allowed=allowed,
        p95_ms=p95,
        rps_per_node=[rng.uniform(250, 400) if s.kind is Kind.REGION else rng.uniform(200, 300) for s in sites],
        headroom=0.25,
        objective=objective,
        budget_usd=rng.choice((None, rng.uniform(2, 12))),
        max_gpus=rng.choice((None, rng.randint(1, 4))),
    )


def _flow_weight(objective: Objective) -> float:
    """What one unit of share-weighted p95 is worth in each objective (optimizer's definitions)."""
    return {Objective.COST: TIE_BREAK, Objective.LATENCY: 1.0, Objective.CARBON: 0.0}[objective]


def min_cost_assignment(problem: Problem, nodes: tuple[int, ...]) -> list[list[float]] | None:
    """Shares [metro][site] serving all demand within the sites' capacity at the least weighted
    p95 (successive shortest paths on the residual graph), or None when the capacity cannot."""
    metros, sites = len(problem.demand_rps), len(problem.sites)
    source, sink = metros + sites, metros + sites + 1
    cap: dict[tuple[int, int], float] = {}
    cost: dict[tuple[int, int], float] = {}

    def edge(a: int, b: int, c: float, w: float) -> None:
        cap[a, b], cost[a, b] = c, w
        cap.setdefault((b, a), 0.0)
        cost[b, a] = -w

    for m in range(metros):
        edge(source, m, problem.demand_rps[m], 0.0)
        for s in range(sites):
            if problem.allowed[m][s] and nodes[s] > 0:
                edge(m, metros + s, math.inf, problem.p95_ms[m][s])
    for s in range(sites):
        edge(metros + s, sink, nodes[s] * problem.rps_per_node[s] / (1 + problem.headroom), 0.0)
    flow: dict[tuple[int, int], float] = dict.fromkeys(cap, 0.0)
    needed = sum(problem.demand_rps)
    while needed > 1e-9:
        dist = {source: 0.0}
        prev: dict[int, int] = {}
        for _ in range(metros + sites + 2):  # Bellman-Ford: residual costs may be negative
            changed = False
            for (a, b), c in cap.items():
                if c - flow[a, b] > 1e-12 and a in dist and dist[a] + cost[a, b] < dist.get(b, math.inf) - 1e-12:
                    dist[b], prev[b], changed = dist[a] + cost[a, b], a, True
            if not changed:
                break
        if sink not in dist:
            return None
        path, node = [], sink
        while node != source:
            path.append((prev[node], node))
            node = prev[node]
        push = min([needed] + [cap[e] - flow[e] for e in path])
        for a, b in path:
            flow[a, b] += push
            flow[b, a] -= push
        needed -= push
    return [
        [max(0.0, flow.get((m, metros + s), 0.0)) / problem.demand_rps[m] for s in range(sites)] for m in range(metros)
    ]


def brute_force(problem: Problem) -> float | None:
    """The least objective over every layout, or None when none is feasible."""
    sites = problem.sites
    total = sum(problem.demand_rps)
    choices = []
    for s in range(len(sites)):
        may = sum(r for r, row in zip(problem.demand_rps, problem.allowed, strict=True) if row[s])
        most = min(sites[s].max_nodes, max(1, math.ceil((1 + problem.headroom) * may / problem.rps_per_node[s])))
        choices.append(range(most + 1))
    bounded = []
    for nodes in itertools.product(*choices):
        if any(
            sites[s].kind is Kind.EDGE and n and not any(nodes[r] for r in range(len(sites)) if r == problem.parent(s))
            for s, n in enumerate(nodes)
        ):
            continue
        # lower bound: each metro at its fastest open site, capacity aside
        best = []
        for m in range(len(problem.demand_rps)):
            open_ok = [s for s in range(len(sites)) if nodes[s] and problem.allowed[m][s]]
            if not open_ok:
                break
            best.append(problem.demand_rps[m] * min(problem.p95_ms[m][s] for s in open_ok) / total)
        else:
            fixed = evaluate(problem, nodes, [[0.0] * len(sites) for _ in problem.demand_rps])
            if problem.max_gpus is not None and fixed.gpus > problem.max_gpus:
                continue
            if problem.budget_usd is not None and fixed.usd > problem.budget_usd + 1e-9:
                continue
            bounded.append((fixed.objective + _flow_weight(problem.objective) * sum(best), nodes))
    best_value: float | None = None
    for bound, nodes in sorted(bounded):
        if best_value is not None and bound >= best_value:
            break
        share = min_cost_assignment(problem, nodes)
        if share is not None:
            value = evaluate(problem, nodes, share).objective
            best_value = value if best_value is None else min(best_value, value)
    return best_value
