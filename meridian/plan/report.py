"""A plan for tools (camelCase JSON: metros, sites, totals, the latency model's error) and for
people (two tables and a line of totals)."""

from __future__ import annotations

from typing import Any

from meridian.plan.latency import Calibration, calibration
from meridian.plan.planner import Plan


def to_json(plan: Plan, demand: str, stack: str) -> dict[str, Any]:
    fit: Calibration = calibration()
    solution = plan.solution
    return {
        "objective": plan.objective.value,
        "demand": demand,
        "stack": stack,
        "home": plan.home,
        "metros": [
            {
                "metro": m.metro,
                "requestsPerSecond": m.requests_per_second,
                "servedBy": [{"site": site, "share": round(share, 4)} for site, share in m.served_by.items()],
                "p50Ms": round(m.p50_ms, 1),
                "p95Ms": round(m.p95_ms, 1),
                "residency": m.residency.value if m.residency else None,
                "point": list(m.point),
            }
            for m in plan.metros
        ],
        "sites": [
            {
                "name": s.site.name,
                "cloud": s.site.cloud.value,
                "kind": s.site.kind.value,
                "region": s.site.region,
                "location": s.site.location,
                "capacity": {
                    "nodes": s.nodes,
                    "machineType": s.site.machine_type,
                    "accelerator": s.site.accelerator.value if s.site.accelerator else None,
                    "gpus": s.nodes * s.site.gpus_per_node,
                    "requestsPerSecond": s.nodes * s.rps_per_node,
                    "loadRequestsPerSecond": round(s.load_rps, 1),
                },
                "usdPerHour": round(s.usd_per_hour, 4),
                "carbonKgPerHour": round(s.kg_per_hour, 4),
                "forcedBy": s.forced_by,
                "point": list(s.site.located.point),
            }
            for s in plan.sites
        ],
        "totals": {
            "usdPerHour": round(solution.usd, 4),
            "gpus": solution.gpus,
            "carbonKgPerHour": round(solution.kg, 4),
            "weightedP95Ms": round(solution.weighted_p95_ms, 1),
        },
        "latencyModel": calibration_json(fit),
    }


def calibration_json(fit: Calibration) -> dict[str, Any]:
    return {
        "measuredPairs": fit.pairs,
        "fixedMs": round(fit.model.fixed_ms, 2),
        "routeFactor": round(fit.model.route_factor, 3),
        "maeMs": round(fit.mae_ms, 1),
        "maxErrorMs": round(fit.max_error_ms, 1),
        "worstPair": list(fit.worst_pair),
    }


def print_plan(plan: Plan, stack: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    metros = Table(title=f"meridian plan: objective {plan.objective.value}, metros")
    for column in ("metro", "req/s", "served by", "p50 ms", "p95 ms", "residency"):
        metros.add_column(column, justify="right" if column in {"req/s", "p50 ms", "p95 ms"} else "left")
    for m in plan.metros:
        served = ", ".join(f"{site} {share:.0%}" for site, share in m.served_by.items())
        residency = m.residency.value if m.residency else "-"
        metros.add_row(
            m.metro, f"{m.requests_per_second:,.0f}", served, f"{m.p50_ms:.0f}", f"{m.p95_ms:.0f}", residency
        )
    console.print(metros)
    sites = Table(title="sites")
    for column in ("site", "cloud", "kind", "nodes", "machine", "req/s cap", "$/hour", "kgCO2/hour", "forced by"):
        sites.add_column(
            column, justify="right" if column in {"nodes", "req/s cap", "$/hour", "kgCO2/hour"} else "left"
        )
    for s in plan.sites:
        sites.add_row(
            s.site.name + (" (home)" if s.site.name == plan.home else ""),
            s.site.cloud.value,
            s.site.kind.value,
            str(s.nodes),
            s.site.machine_type,
            f"{s.nodes * s.rps_per_node:,.0f}",
            f"{s.usd_per_hour:,.2f}",
            f"{s.kg_per_hour:.3f}",
            s.forced_by,
        )
    console.print(sites)
    solution = plan.solution
    fit = calibration()
    console.print(
        f"total: ${solution.usd:,.2f}/hour (home extras and the global CDN included), {solution.gpus} GPUs, "
        f"{solution.kg:.2f} kgCO2/hour, demand-weighted p95 {solution.weighted_p95_ms:.0f} ms. Stack: {stack}\n"
        f"latency model: {fit.model.fixed_ms:.1f} ms + {fit.model.route_factor:.2f} x fibre round trip of the "
        f"great-circle distance; on {fit.pairs} measured pairs MAE {fit.mae_ms:.1f} ms, max {fit.max_error_ms:.0f} ms "
        f"({' - '.join(fit.worst_pair)})"
    )
