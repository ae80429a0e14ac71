"""Cost ceiling: at maximum scale the stack stays within its GPU count and $/hour limits, counting
both the GPU nodes its pools may hold and the GPUs its workloads may request (autoscalers'
maximum replicas)."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyConfigSchema, Severity, StackValidationArgs

from ..decorators import MANDATORY, stack_rule
from ..pricing import Priced, estimate
from ..stack import resource_region


def priced(args: StackValidationArgs) -> list[Priced]:
    return [
        Priced(r.resource_type, r.name, r.props, resource_region(r), r.provider.name if r.provider else "")
        for r in args.resources
    ]


CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        # Defaults match components/config.py Limits.
        "maxGpus": {"type": "integer", "minimum": 1, "default": 64},
        "maxUsdPerHour": {"type": "number", "exclusiveMinimum": 0, "default": 500.0},
        "homeRegion": {
            "type": "string",
            "default": "",
            "description": "the stack's home region: prices federation transfer to it",
        },
    }
)


@stack_rule("meridian-cost-ceiling", Severity.HIGH, MANDATORY, config_schema=CONFIG_SCHEMA)
def COST_CEILING(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """At maximum scale the stack stays within its GPU count and $/hour ceiling."""
    config = args.get_config()
    max_gpus, max_usd = int(config["maxGpus"]), float(config["maxUsdPerHour"])
    result = estimate(priced(args), str(config.get("homeRegion") or "") or None)
    for what in result.unpriced:
        yield f"cannot price {what}: add it to policy/rules/prices.yaml", None
    if result.gpus_max > max_gpus:
        yield f"{result.gpus_max} GPUs at maximum scale exceed maxGpus {max_gpus}", None
    # What the GPU workloads may ask for at their autoscalers' maximum, wherever they run (an
    # existing cluster has no node pool to price, but its GPUs count all the same).
    if result.gpus_requested_max > max_gpus:
        yield (
            (
                f"GPU workloads request {result.gpus_requested_max} GPUs at maximum scale, over maxGpus {max_gpus} "
                f"({', '.join(f'{d.workload}: {d.gpus_max}' for d in result.demand)})"
            ),
            None,
        )
    if result.usd_hour_max > max_usd:
        yield (
            (
                f"${result.usd_hour_max:,.2f}/hour at maximum scale exceeds maxUsdPerHour ${max_usd:,.2f} "
                "(run `python -m meridian cost STACK` for the breakdown)"
            ),
            None,
        )


POLICIES = [COST_CEILING]
