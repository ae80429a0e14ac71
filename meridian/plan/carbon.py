"""Carbon per hour of a site: the modelled power of its nodes times its grid's carbon intensity.

Intensity: carbon.yaml (gCO2eq/kWh per catalog region, each with its source and date).
Power, at the peak the plan is sized for (an assumption: real draw is lower off-peak):
- each GPU at its board power (NVIDIA datasheets: T4 70 W, L4 72 W, A10G 150 W as the A10,
  V100 300 W SXM2, A100 400 W SXM4, H100 700 W SXM5);
- each vCPU at 3.5 W and each GiB of memory at 0.392 W: Cloud Carbon Footprint's average
  maximum watts per vCPU and memory coefficient for AWS
  (cloud-carbon-footprint packages/aws/src/domain/AwsFootprintEstimationConstants.ts,
  MAX_WATTS_AVG and MEMORY_COEFFICIENT, commit 3668d2e1d6bb), used for both clouds;
- times the data centre's PUE: 1.135 (AWS, the same file's PUE_AVG) and 1.10 (GCP, Google's
  reported fleet-wide trailing twelve-month PUE, https://www.google.com/about/datacenters/efficiency/).
An edge site's nodes draw the same per vCPU and GiB; edge sites are priced and powered at their
parent region's grid (a Local Zone's own grid is not in the table).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from components.catalog import (
    CPU_MACHINES,
    DEFAULT_EDGE_MACHINE,
    DEFAULT_SYSTEM_MACHINE,
    GPU_MACHINES,
    Accelerator,
    Cloud,
)

CARBON_FILE = Path(__file__).with_name("carbon.yaml")
GPU_WATTS: dict[Accelerator, float] = {
    Accelerator.T4: 70,
    Accelerator.L4: 72,
    Accelerator.A10G: 150,
    Accelerator.V100: 300,
    Accelerator.A100: 400,
    Accelerator.H100: 700,
}
WATTS_PER_VCPU = 3.5
WATTS_PER_GIB = 0.392
PUE: dict[Cloud, float] = {Cloud.AWS: 1.135, Cloud.GCP: 1.10}


@cache
def intensity_table() -> dict[Cloud, dict[str, float]]:
    raw = yaml.safe_load(CARBON_FILE.read_text())
    return {
        Cloud.GCP: {region: float(v) for region, v in raw["gcp"].items()},
        Cloud.AWS: {region: float(v["g_per_kwh"]) for region, v in raw["aws"].items()},
    }


def grid_g_per_kwh(cloud: Cloud, region: str) -> float:
    try:
        return intensity_table()[cloud][region]
    except KeyError:
        raise KeyError(
            f"no grid carbon intensity for {cloud} {region}; add it to meridian/plan/{CARBON_FILE.name}"
        ) from None


def _kw(cloud: Cloud, watts: float) -> float:
    return watts * PUE[cloud] / 1000


def gpu_node_kw(cloud: Cloud, machine_type: str, accelerator: Accelerator) -> float:
    m = GPU_MACHINES[cloud][machine_type]
    return _kw(cloud, m.gpus * GPU_WATTS[accelerator] + m.vcpus * WATTS_PER_VCPU + m.memory_gib * WATTS_PER_GIB)


def cpu_node_kw(cloud: Cloud, machine_type: str) -> float:
    m = CPU_MACHINES[cloud][machine_type]
    return _kw(cloud, m.vcpus * WATTS_PER_VCPU + m.memory_gib * WATTS_PER_GIB)


def edge_node_kw(cloud: Cloud) -> float:
    return cpu_node_kw(cloud, DEFAULT_EDGE_MACHINE[cloud])


def system_node_kw(cloud: Cloud) -> float:
    return cpu_node_kw(cloud, DEFAULT_SYSTEM_MACHINE[cloud])


def kg_per_hour(kw: float, cloud: Cloud, region: str) -> float:
    return kw * grid_g_per_kwh(cloud, region) / 1000
