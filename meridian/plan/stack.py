"""A plan as a stack: `stacks/Pulumi.<name>.yaml` that components/config.py loads and the program
deploys. The planner decides where (regions, edge sites, node counts, home); everything else
is the base stack's (`base:` in the demand file), or the defaults below when there is none.

Pools are sized for the peak with headroom, so min = desired = max: the plan's capacity is
what `meridian cost` prices at maximum scale, on-demand (spot would change both).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from components.catalog import Cloud
from components.config import NAMESPACE, Federation, namespace_values
from meridian.preview import DEFAULT_PROVIDER_CONFIG

if TYPE_CHECKING:  # the planner builds its costs from this module's entries: no import cycle at run time
    from meridian.plan.planner import Plan

# A stack needs callers' credentials, a domain and owners; without a base stack the plan
# writes these placeholders (README: change them before a first `pulumi up`).
DEFAULT_SETTINGS: dict[str, Any] = {
    "auth": {"apiKeys": ["default"]},
    "dns": {"domain": "api.meridian.example.com"},
    "tags": {"owner": "ml-platform", "costCenter": "unset"},
}
PLACED_KEYS = ("home", "regions")  # what the planner owns in a stack; the rest is the base's


def edge_entry(name: str, location: str, nodes: int) -> dict[str, Any]:
    return {"name": name, "location": location, "capacity": nodes}


def region_entry(
    name: str,
    cloud: Cloud,
    residency: str,
    accelerator: str,
    machine_type: str,
    nodes: int,
    edges: list[dict[str, Any]],
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "cloud": cloud.value,
        "residency": residency,
        "gpu": {"accelerator": accelerator, "machineType": machine_type, "min": nodes, "desired": nodes, "max": nodes},
    }
    if edges:
        entry["edgeSites"] = edges
    return entry


def read_document(path: Path) -> dict[str, Any]:
    """A stack file as YAML (the caller has validated it through components/config.py)."""
    return yaml.safe_load(path.read_text()) or {}


def settings_of(document: dict[str, Any] | None) -> dict[str, Any]:
    """The base stack's `meridian:` settings the planner keeps (all but home and regions)."""
    if document is None:
        return dict(DEFAULT_SETTINGS)
    values = namespace_values(document.get("config") or {})
    return {k: v for k, v in values.items() if k not in PLACED_KEYS}


def stack_document(
    home: str, regions: list[dict[str, Any]], settings: dict[str, Any], base: dict[str, Any] | None
) -> dict[str, Any]:
    """The whole stack file: the base's provider keys (or the preview's defaults), then `meridian:`."""
    providers = (
        {k: v for k, v in (base.get("config") or {}).items() if not k.startswith(f"{NAMESPACE}:")}
        if base is not None
        else {k: yaml.safe_load(v) for k, v in DEFAULT_PROVIDER_CONFIG.items()}
    )
    settings = dict(settings)
    if not any(r["cloud"] == Cloud.AWS.value for r in regions):
        settings.pop("aws", None)  # admin roles for EKS clusters the layout no longer has
    federation = dict(settings.get("federation") or {})
    if int(federation.get("minRegions", Federation().min_regions)) > len(regions):
        # the quorum (the base's, or the default) cannot exceed the planned regions (config refuses it)
        federation["minRegions"] = len(regions)
    meridian = {"home": home, "regions": regions, **settings}
    if federation:
        meridian["federation"] = federation
    return {"config": {**providers, **{f"{NAMESPACE}:{k}": v for k, v in meridian.items()}}}


def write_stack(path: Path, document: dict[str, Any], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(document, sort_keys=False, width=120)
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + body)


def plan_regions(plan: Plan) -> list[dict[str, Any]]:
    """The plan's regions as stack entries, busiest first, each with its edge sites."""
    regions = sorted((p for p in plan.sites if p.site.kind.value == "region"), key=lambda p: (-p.load_rps, p.site.name))
    entries = []
    for region in regions:
        edges = [
            edge_entry(p.site.name, p.site.location, p.nodes)
            for p in plan.sites
            if p.site.kind.value == "edge" and p.site.region == region.site.name and p.site.cloud is region.site.cloud
        ]
        site = region.site
        assert site.accelerator is not None
        entries.append(
            region_entry(
                site.name,
                site.cloud,
                site.residency.value,
                site.accelerator.value,
                site.machine_type,
                region.nodes,
                edges,
            )
        )
    return entries
