"""`python -m meridian cost STACK`: what a stack costs per hour and per month, at min and max scale.

Runs the program offline under mocks and prices every billable resource from the price table
in the policy pack (policy/rules/prices.yaml: source and date per line), per region and per
kind. Traffic-priced kinds use the table's stated monthly traffic. The cost-ceiling rule and
`meridian diff` use the same estimate.
"""

from __future__ import annotations

from typing import Any

from components.config import load_stack
from meridian.preview import preview_stack
from meridian.stack_command import run_stack_command
from policy.rules.pricing import KINDS, Estimate, Priced, estimate, hours_per_month, price_table


def priced(records: list[dict[str, Any]]) -> list[Priced]:
    """Preview records (`meridian preview --json` resources) as pricing inputs."""
    return [
        Priced(r["type"], r["name"], r.get("inputs") or {}, r.get("region"), r.get("provider") or "")
        for r in records
        if r.get("custom", True)
    ]


def stack_estimate(stack: str) -> Estimate:
    """Run the stack's program under mocks and price it (ConfigError on a bad stack)."""
    config = load_stack(stack)
    inventory = preview_stack(stack)
    return estimate(priced([r.to_json() for r in inventory.resources]), config.home)


def to_json(stack: str, result: Estimate) -> dict[str, Any]:
    month = hours_per_month()
    return {
        "stack": stack,
        "usd_per_hour": {"min": round(result.usd_hour_min, 4), "max": round(result.usd_hour_max, 4)},
        "usd_per_month": {"min": round(result.usd_hour_min * month, 2), "max": round(result.usd_hour_max * month, 2)},
        "gpus": {"min": result.gpus_min, "max": result.gpus_max},
        # what the GPU workloads request between their autoscalers' bounds (policy/rules/pricing.py)
        "gpus_requested": {"min": result.gpus_requested_min, "max": result.gpus_requested_max},
        "by_region": {k: {"min": round(lo, 4), "max": round(hi, 4)} for k, (lo, hi) in result.by("region").items()},
        "by_kind": {k: {"min": round(lo, 4), "max": round(hi, 4)} for k, (lo, hi) in result.by("kind").items()},
        "unpriced": result.unpriced,
        "traffic_assumptions": dict(price_table()["traffic"]),
    }


def _print(stack: str, result: Estimate) -> None:
    from rich.console import Console
    from rich.table import Table

    month = hours_per_month()
    console = Console(width=160)
    for key, order in (("region", None), ("kind", KINDS)):
        table = Table(title=f"meridian cost: stack {stack}, by {key}")
        table.add_column(key)
        for column in ("$/hour min", "$/hour max", "$/month min", "$/month max"):
            table.add_column(column, justify="right")
        groups = result.by(key)
        names = [k for k in order if k in groups] if order else list(groups)
        for name in names:
            low, high = groups[name]
            table.add_row(name, f"{low:,.2f}", f"{high:,.2f}", f"{low * month:,.0f}", f"{high * month:,.0f}")
        table.add_row(
            "total",
            f"{result.usd_hour_min:,.2f}",
            f"{result.usd_hour_max:,.2f}",
            f"{result.usd_hour_min * month:,.0f}",
            f"{result.usd_hour_max * month:,.0f}",
            style="bold",
        )
        console.print(table)
    traffic = ", ".join(f"{k.replace('_', ' ')}: {v} GB/month" for k, v in price_table()["traffic"].items())
    console.print(
        f"GPUs: {result.gpus_min} at min scale, {result.gpus_max} at max; the GPU workloads request "
        f"{result.gpus_requested_min} to {result.gpus_requested_max}. Traffic assumed: {traffic}."
    )
    console.print("Prices: policy/rules/prices.yaml (on-demand list prices; source and date on every line).")
    for line in result.unpriced:
        console.print(f"[red]not priced[/]: {line}")


def main(argv: list[str]) -> int:
    return run_stack_command(
        argv,
        prog="meridian cost",
        description=(__doc__ or "").split("\n\n")[0],
        json_help="print the estimate as JSON",
        compute=stack_estimate,
        as_json=to_json,
        show=_print,
    )
