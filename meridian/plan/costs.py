"""What opening a site and each of its nodes costs per hour: the estimator of `meridian cost`
(policy/rules/pricing.py over policy/rules/prices.yaml), not a second price list.

Nodes are priced with the estimator's own lookups (machine, guest GPU, region factor). What a
region or an edge site costs beyond its nodes (control plane, NAT, load balancers, system
pool, federation transfer, its CDN backend) is whatever the program registers for one: a probe
stack (an AWS home and one more region per cloud, each with an edge site) runs under mocks once
per process and its priced line items are split by region and edge site. The home's extras
(metrics receiver, SuperLink) and the global CDN are a constant. System pools scale with the
region's price factor; the probe's regions have factor 1.0. Transfer is priced as the probe's
home is on AWS; the written stack's real figure is `meridian cost`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from components.catalog import DEFAULT_EDGE_MACHINE, GCP_ACCELERATOR_TYPES, Accelerator, Cloud
from components.config import parse
from meridian.cost import priced
from meridian.plan.stack import DEFAULT_SETTINGS, edge_entry, region_entry
from meridian.preview import run_program
from policy.rules.pricing import (
    CPU_NODES,
    GLOBAL,
    GPU_NODES,
    LineItem,
    accelerator_bundled,
    estimate,
    gpu_accelerator,
    machine,
    region_factor,
)

PROBE_HOME = ("us-east-1", Cloud.AWS, "us", "t4", "g4dn.xlarge", "")
# cloud -> (region at price factor 1.0, residency, accelerator, GPU machine, edge location)
PROBES: dict[Cloud, tuple[str, str, str, str, str]] = {
    Cloud.AWS: ("us-west-2", "us", "t4", "g4dn.xlarge", "us-west-2-lax-1a"),
    Cloud.GCP: ("us-central1", "us", "t4", "n1-standard-4", "us-central1-a"),
}


def probe_edge(cloud: Cloud) -> str:
    return f"probe-edge-{cloud.value}"


@dataclass(frozen=True)
class Overheads:
    """$/hour beyond nodes, per cloud: a region's flat part and its system pool (at factor 1.0),
    an edge site's; and the constant (home extras, global CDN)."""

    region_flat: dict[Cloud, float]
    region_system: dict[Cloud, float]
    edge_flat: dict[Cloud, float]
    constant: float


def _sum(items: Iterable[LineItem]) -> float:
    return sum(i.usd_hour_max for i in items)


@cache
def overheads() -> Overheads:
    """Run the probe stack under mocks and split its priced line items."""
    home_name, home_cloud, home_zone, home_acc, home_machine, _ = PROBE_HOME
    regions = [region_entry(home_name, home_cloud, home_zone, home_acc, home_machine, 1, [])]
    for cloud, (name, zone, accelerator, machine_type, location) in PROBES.items():
        regions.append(
            region_entry(name, cloud, zone, accelerator, machine_type, 1, [edge_entry(probe_edge(cloud), location, 1)])
        )
    config = parse({"home": home_name, "regions": regions, **DEFAULT_SETTINGS}, "meridian plan probe")
    inventory = run_program(config, "plan-probe")
    items = [
        i for i in estimate(priced([r.to_json() for r in inventory.resources]), home_name).items if i.kind != GPU_NODES
    ]

    def of_region(region: str) -> list[LineItem]:
        return [i for i in items if i.region == region or (i.region == GLOBAL and region in i.resource)]

    region_flat: dict[Cloud, float] = {}
    region_system: dict[Cloud, float] = {}
    edge_flat: dict[Cloud, float] = {}
    attributed: set[int] = set()
    for cloud, (name, *_rest) in PROBES.items():
        own = of_region(name)
        attributed |= {id(i) for i in own}
        edge = [i for i in own if probe_edge(cloud) in i.resource]
        rest = [i for i in own if i not in edge]
        edge_flat[cloud] = _sum(i for i in edge if i.kind != CPU_NODES)
        region_system[cloud] = _sum(i for i in rest if i.kind == CPU_NODES)
        region_flat[cloud] = _sum(i for i in rest if i.kind != CPU_NODES)
    home = of_region(home_name)
    attributed |= {id(i) for i in home}
    # the home pays what any AWS region pays, less transfer to itself, plus its own extras
    home_extra = _sum(home) - region_flat[Cloud.AWS] - region_system[Cloud.AWS]
    unattributed = _sum(i for i in items if id(i) not in attributed)
    return Overheads(region_flat, region_system, edge_flat, home_extra + unattributed)


def gpu_node_usd(cloud: Cloud, region: str, machine_type: str, accelerator: Accelerator) -> float | None:
    """One on-demand GPU node in a region, as the estimator prices a node pool of it."""
    base = machine(cloud.value, machine_type)
    if base is None:
        return None
    per_node = base.usd_per_hour
    if cloud is Cloud.GCP and base.gpus == 0:  # N1: the GPU is a guest accelerator, billed apart
        guest = GCP_ACCELERATOR_TYPES[accelerator]
        priced_guest = gpu_accelerator(cloud.value, guest)
        if priced_guest is None or accelerator_bundled(cloud.value, guest):
            return None
        per_node += priced_guest[0]
    return per_node * region_factor(cloud.value, region)


def edge_node_usd(cloud: Cloud, parent_region: str) -> float:
    """One edge node (the cloud's default edge machine) at its parent region's price factor."""
    base = machine(cloud.value, DEFAULT_EDGE_MACHINE[cloud])
    assert base is not None, f"prices.yaml lacks {DEFAULT_EDGE_MACHINE[cloud]}"
    return base.usd_per_hour * region_factor(cloud.value, parent_region)


def region_open_usd(cloud: Cloud, region: str) -> float:
    o = overheads()
    return o.region_flat[cloud] + o.region_system[cloud] * region_factor(cloud.value, region)


def edge_open_usd(cloud: Cloud) -> float:
    return overheads().edge_flat[cloud]
