"""The optimizer finds the optimum (against enumeration, on many small seeded instances), and
every layout it returns keeps every constraint it was given and has no site it could drop."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from meridian.plan.optimizer import Objective, Problem, Solution, solve
from meridian.plan.sites import Kind
from tests.meridian.plan.instances import SLO_MS, brute_force, random_problem

SEEDS = range(40)
OBJECTIVES = list(Objective)
REL_TOL = 1e-6  # the solver's gap is 1e-7 (optimizer.MIP_REL_GAP)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_optimum_equals_brute_force_enumeration(seed: int, objective: Objective) -> None:
    problem = random_problem(seed, objective)
    solution = solve(problem)
    expected = brute_force(problem)
    if expected is None:
        assert solution is None
    else:
        assert solution is not None
        assert solution.objective == pytest.approx(expected, rel=REL_TOL, abs=1e-7)


def _keeps_every_constraint(problem: Problem, solution: Solution) -> None:
    for m, shares in enumerate(solution.share):
        assert sum(shares) == pytest.approx(1.0)
        for s, share in enumerate(shares):
            if share > 1e-9:
                site = problem.sites[s]
                assert problem.p95_ms[m][s] <= SLO_MS, "served beyond its SLO"
                assert problem.allowed[m][s], "served outside its residency zone"
                assert solution.nodes[s] > 0, "served by a closed site"
    for s, site in enumerate(problem.sites):
        load = sum(problem.demand_rps[m] * solution.share[m][s] for m in range(len(problem.demand_rps)))
        assert solution.nodes[s] * problem.rps_per_node[s] >= (1 + problem.headroom) * load - 1e-6
        if site.kind is Kind.EDGE and solution.nodes[s]:
            parent = problem.parent(s)
            assert parent is not None and solution.nodes[parent] > 0, "an edge site without its region"
    if problem.budget_usd is not None:
        assert solution.usd <= problem.budget_usd + 1e-6
    if problem.max_gpus is not None:
        assert solution.gpus <= problem.max_gpus


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_layout_keeps_slo_residency_capacity_and_limits(seed: int, objective: Objective) -> None:
    problem = random_problem(seed, objective)
    solution = solve(problem)
    if solution is not None:
        _keeps_every_constraint(problem, solution)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("seed", SEEDS)
def test_dropping_any_chosen_site_breaks_a_constraint_or_raises_the_objective(seed: int, objective: Objective) -> None:
    problem = random_problem(seed, objective)
    solution = solve(problem)
    if solution is None:
        return
    for s in solution.open:
        without = solve(replace(problem, closed=frozenset({s})))
        if without is not None:
            assert s not in without.open
            assert without.objective > solution.objective + REL_TOL * max(1.0, math.fabs(solution.objective)) / 10
