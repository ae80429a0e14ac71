"""The plan as a picture: metros sized by demand, the chosen sites, a line from each metro to
each site serving it. Drawn from the plan's JSON alone, so it runs wherever matplotlib is (the
workloads' environment, like meridian/local/report.py's plots) without the planner's solver.

The map has no coastlines (no map data ships with the project): longitude and latitude axes,
with the metros' names, place it well enough.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KIND_STYLE = {"region": ("s", "tab:red"), "edge": ("^", "tab:orange")}


def draw(plan: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = {s["name"]: s for s in plan["sites"]}
    fig, ax = plt.subplots(figsize=(14, 7))
    peak = max(m["requestsPerSecond"] for m in plan["metros"])
    for metro in plan["metros"]:
        lat, lon = metro["point"]
        for served in metro["servedBy"]:
            site_lat, site_lon = sites[served["site"]]["point"]
            ax.plot([lon, site_lon], [lat, site_lat], color="tab:blue", alpha=0.25 + 0.5 * served["share"], lw=1)
        ax.scatter(lon, lat, s=60 + 600 * metro["requestsPerSecond"] / peak, color="tab:blue", alpha=0.35)
        ax.annotate(
            f"{metro['metro']} ({metro['p95Ms']:.0f} ms)",
            (lon, lat),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    for kind, (marker, color) in KIND_STYLE.items():
        chosen = [s for s in plan["sites"] if s["kind"] == kind]
        ax.scatter(
            [s["point"][1] for s in chosen],
            [s["point"][0] for s in chosen],
            marker=marker,
            color=color,
            s=70,
            label=f"{kind} sites",
            zorder=3,
        )
    totals = plan["totals"]
    ax.set_title(
        f"meridian plan ({plan['objective']}): ${totals['usdPerHour']:.2f}/hour, {totals['gpus']} GPUs, "
        f"{totals['carbonKgPerHour']:.2f} kgCO2/hour; circles: metros by demand (p95)"
    )
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 75)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)


def draw_file(plan_json: Path, png: Path) -> None:
    draw(json.loads(plan_json.read_text()), png)
