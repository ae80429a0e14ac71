"""The candidate sites a layout is chosen from, each with its place, zone, unit costs and carbon.

A region candidate is a catalog region of an allowed cloud with its cheapest GPU machine per GPU
among the accelerators the base stack allows (on GCP, only those some zone of the region offers).
An edge candidate is an AWS Local Zone in a catalog metro (parent: its region) or, on GCP, a
zone of the region itself (a CPU pool beside the region's GPUs: no nearer, but cheaper per
request when its capacity figure says so). Choosing an edge site opens its parent region.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from components.catalog import (
    DEFAULT_EDGE_MACHINE,
    DEFAULT_SYSTEM_MACHINE,
    GPU_MACHINES,
    REGIONS,
    Accelerator,
    Cloud,
    Residency,
    gcp_gpu_zones,
)
from components.locations import LOCATIONS
from meridian.plan import carbon, costs
from meridian.plan.latency import Located, locate
from meridian.plan.metros import METROS
from policy.rules.pricing import machine

# components/config.py: a GPU pool holds at most 1000 nodes, an edge site at most 100.
MAX_GPU_NODES = 1000
MAX_EDGE_NODES = 100


class Kind(StrEnum):
    REGION = "region"
    EDGE = "edge"


@dataclass(frozen=True)
class Site:
    name: str  # the region's name, or the edge site's (unique in a stack)
    cloud: Cloud
    kind: Kind
    region: str  # itself, or the edge site's parent
    residency: Residency
    located: Located
    location: str  # a region's name, an edge site's Local Zone or GCP zone
    machine_type: str
    accelerator: Accelerator | None
    gpus_per_node: int
    max_nodes: int
    open_usd: float  # $/hour to have the site at all (nodes apart)
    node_usd: float  # $/hour per node
    open_kg: float  # kgCO2/hour to have it (system pool)
    node_kg: float  # kgCO2/hour per node


def _cheapest_gpu(cloud: Cloud, region: str, allowed: set[Accelerator]) -> tuple[str, Accelerator, float] | None:
    """(machine, accelerator, $/node) with the lowest price per GPU in the region, or None."""
    options: list[tuple[float, int, str, Accelerator, float]] = []
    for machine_type, spec in GPU_MACHINES[cloud].items():
        for accelerator in spec.accelerators:
            if accelerator not in allowed or (cloud is Cloud.GCP and not gcp_gpu_zones(region, accelerator)):
                continue
            usd = costs.gpu_node_usd(cloud, region, machine_type, accelerator)
            if usd is not None:
                options.append((usd / spec.gpus, spec.gpus, machine_type, accelerator, usd))
    if not options:
        return None
    _, _, machine_type, accelerator, usd = min(options)
    return machine_type, accelerator, usd


def _system_kg(cloud: Cloud, region: str) -> float:
    """The region's system pool at its size in the probe stack (costs.py), on the region's grid."""
    system = machine(cloud.value, DEFAULT_SYSTEM_MACHINE[cloud])
    assert system is not None
    nodes = round(costs.overheads().region_system[cloud] / system.usd_per_hour)
    return carbon.kg_per_hour(nodes * carbon.system_node_kw(cloud), cloud, region)


def region_sites(clouds: list[Cloud], allowed: set[Accelerator]) -> list[Site]:
    sites: list[Site] = []
    for cloud in clouds:
        for region, zone in REGIONS[cloud].items():
            gpu = _cheapest_gpu(cloud, region, allowed)
            if gpu is None:
                continue
            machine_type, accelerator, usd = gpu
            sites.append(
                Site(
                    name=region,
                    cloud=cloud,
                    kind=Kind.REGION,
                    region=region,
                    residency=zone,
                    located=locate(LOCATIONS[cloud][region]),
                    location=region,
                    machine_type=machine_type,
                    accelerator=accelerator,
                    gpus_per_node=GPU_MACHINES[cloud][machine_type].gpus,
                    max_nodes=MAX_GPU_NODES,
                    open_usd=costs.region_open_usd(cloud, region),
                    node_usd=usd,
                    open_kg=_system_kg(cloud, region),
                    node_kg=carbon.kg_per_hour(carbon.gpu_node_kw(cloud, machine_type, accelerator), cloud, region),
                )
            )
    return sites


def _edge(parent: Site, name: str, location: str, located: Located) -> Site:
    cloud = parent.cloud
    return Site(
        name=name,
        cloud=cloud,
        kind=Kind.EDGE,
        region=parent.region,
        residency=parent.residency,
        located=located,
        location=location,
        machine_type=DEFAULT_EDGE_MACHINE[cloud],
        accelerator=None,
        gpus_per_node=0,
        max_nodes=MAX_EDGE_NODES,
        open_usd=costs.edge_open_usd(cloud),
        node_usd=costs.edge_node_usd(cloud, parent.region),
        open_kg=0.0,
        node_kg=carbon.kg_per_hour(carbon.edge_node_kw(cloud), cloud, parent.region),
    )


def edge_sites(regions: list[Site]) -> list[Site]:
    by_region = {(s.cloud, s.region): s for s in regions}
    sites: list[Site] = []
    for metro in METROS.values():
        for zone_id in metro.local_zones:
            parent = by_region.get((Cloud.AWS, zone_id.rsplit("-", 2)[0]))
            if parent is not None:
                sites.append(_edge(parent, f"{metro.code}-lz", zone_id, locate(metro.point)))
    for parent in regions:
        if parent.cloud is Cloud.GCP:
            zones = sorted({z for acc in Accelerator for z in gcp_gpu_zones(parent.region, acc)})
            zone = zones[0] if zones else f"{parent.region}-b"
            sites.append(_edge(parent, f"{parent.region}-edge", zone, parent.located))
    return sites


def candidates(clouds: list[Cloud], allowed: set[Accelerator], edges: bool) -> list[Site]:
    regions = region_sites(clouds, allowed)
    return regions + (edge_sites(regions) if edges else [])
