"""What each cloud offers: regions with their geography, GPU and CPU machine types.

Pure data, no Pulumi: the stack config model checks every region and machine type against
it before a resource is registered, and the cost and policy tools read it too.

Sources (checked 2026-11):
- AWS regions: https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
- AWS GPU instances: https://aws.amazon.com/ec2/instance-types/accelerated-computing/
- AWS Local Zones: https://aws.amazon.com/about-aws/global-infrastructure/localzones/locations/
- GCP regions/zones: https://cloud.google.com/compute/docs/regions-zones
- GCP GPUs by machine family: https://cloud.google.com/compute/docs/gpus
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    KUBERNETES = "kubernetes"  # an existing cluster reached by kubeconfig (on-prem, kind, k3d)


class Residency(StrEnum):
    """Data-residency zones: a region's data never leaves its zone."""

    US = "us"
    CA = "ca"
    EU = "eu"
    UK = "uk"
    APAC = "apac"
    SA = "sa"


class Accelerator(StrEnum):
    T4 = "t4"
    L4 = "l4"
    A10G = "a10g"
    V100 = "v100"
    A100 = "a100"
    H100 = "h100"


# Region name -> the residency zone its geography belongs to.
AWS_REGIONS: dict[str, Residency] = {
    "us-east-1": Residency.US,
    "us-east-2": Residency.US,
    "us-west-2": Residency.US,
    "ca-central-1": Residency.CA,
    "sa-east-1": Residency.SA,
    "eu-west-1": Residency.EU,
    "eu-central-1": Residency.EU,
    "eu-north-1": Residency.EU,
    "eu-west-2": Residency.UK,
    "ap-southeast-1": Residency.APAC,
    "ap-northeast-1": Residency.APAC,
    "ap-south-1": Residency.APAC,
    "ap-southeast-2": Residency.APAC,
}

GCP_REGIONS: dict[str, Residency] = {
    "us-central1": Residency.US,
    "us-east1": Residency.US,
    "us-east4": Residency.US,
    "us-west1": Residency.US,
    "northamerica-northeast1": Residency.CA,
    "southamerica-east1": Residency.SA,
    "europe-west1": Residency.EU,
    "europe-west3": Residency.EU,
    "europe-west4": Residency.EU,
    "europe-north1": Residency.EU,
    "europe-west2": Residency.UK,
    "asia-southeast1": Residency.APAC,
    "asia-northeast1": Residency.APAC,
    "asia-south1": Residency.APAC,
}

REGIONS: dict[Cloud, dict[str, Residency]] = {Cloud.AWS: AWS_REGIONS, Cloud.GCP: GCP_REGIONS}


@dataclass(frozen=True)
class GpuMachine:
    accelerators: tuple[Accelerator, ...]  # what may be attached (one choice per pool)
    gpus: int  # GPUs per node
    vcpus: int
    memory_gib: int


@dataclass(frozen=True)
class CpuMachine:
    vcpus: int
    memory_gib: int


AWS_GPU_MACHINES: dict[str, GpuMachine] = {
    "g4dn.xlarge": GpuMachine((Accelerator.T4,), 1, 4, 16),
    "g4dn.2xlarge": GpuMachine((Accelerator.T4,), 1, 8, 32),
    "g4dn.12xlarge": GpuMachine((Accelerator.T4,), 4, 48, 192),
    "g5.xlarge": GpuMachine((Accelerator.A10G,), 1, 4, 16),
    "g5.2xlarge": GpuMachine((Accelerator.A10G,), 1, 8, 32),
    "g5.12xlarge": GpuMachine((Accelerator.A10G,), 4, 48, 192),
    "g6.xlarge": GpuMachine((Accelerator.L4,), 1, 4, 16),
    "g6.2xlarge": GpuMachine((Accelerator.L4,), 1, 8, 32),
    "p4d.24xlarge": GpuMachine((Accelerator.A100,), 8, 96, 1152),
    "p5.48xlarge": GpuMachine((Accelerator.H100,), 8, 192, 2048),
}

GCP_GPU_MACHINES: dict[str, GpuMachine] = {
    "n1-standard-4": GpuMachine((Accelerator.T4, Accelerator.V100), 1, 4, 15),
    "n1-standard-8": GpuMachine((Accelerator.T4, Accelerator.V100), 1, 8, 30),
    "g2-standard-4": GpuMachine((Accelerator.L4,), 1, 4, 16),
    "g2-standard-8": GpuMachine((Accelerator.L4,), 1, 8, 32),
    "g2-standard-24": GpuMachine((Accelerator.L4,), 2, 24, 96),
    "a2-highgpu-1g": GpuMachine((Accelerator.A100,), 1, 12, 85),
    "a2-highgpu-8g": GpuMachine((Accelerator.A100,), 8, 96, 680),
    "a3-highgpu-8g": GpuMachine((Accelerator.H100,), 8, 208, 1872),
}

# On an existing cluster the nodes exist already: the stack names the accelerator only.
GPU_MACHINES: dict[Cloud, dict[str, GpuMachine]] = {
    Cloud.AWS: AWS_GPU_MACHINES,
    Cloud.GCP: GCP_GPU_MACHINES,
}

# GCP's own accelerator type names (guest_accelerators[].type).
GCP_ACCELERATOR_TYPES: dict[Accelerator, str] = {
    Accelerator.T4: "nvidia-tesla-t4",
    Accelerator.L4: "nvidia-l4",
    Accelerator.V100: "nvidia-tesla-v100",
    Accelerator.A100: "nvidia-tesla-a100",
    Accelerator.H100: "nvidia-h100-80gb",
}

# CPU types for system pools and edge sites (Local Zones offer a subset of the region's types).
CPU_MACHINES: dict[Cloud, dict[str, CpuMachine]] = {
    Cloud.AWS: {
        "t3.large": CpuMachine(2, 8),
        "t3.xlarge": CpuMachine(4, 16),
        "m5.large": CpuMachine(2, 8),
        "m5.xlarge": CpuMachine(4, 16),
        "m5.2xlarge": CpuMachine(8, 32),
        "c5.xlarge": CpuMachine(4, 8),
        "c5.2xlarge": CpuMachine(8, 16),
    },
    Cloud.GCP: {
        "e2-standard-2": CpuMachine(2, 8),
        "e2-standard-4": CpuMachine(4, 16),
        "n2-standard-4": CpuMachine(4, 16),
        "n2-standard-8": CpuMachine(8, 32),
        "c3-standard-4": CpuMachine(4, 16),
    },
}

DEFAULT_SYSTEM_MACHINE: dict[Cloud, str] = {Cloud.AWS: "m5.large", Cloud.GCP: "e2-standard-4"}
DEFAULT_EDGE_MACHINE: dict[Cloud, str] = {Cloud.AWS: "c5.xlarge", Cloud.GCP: "e2-standard-4"}


def edge_location_belongs(cloud: Cloud, region: str, location: str) -> bool:
    """Whether an edge location lies in its parent region.

    AWS Local Zones are named after their parent region (`us-east-1-nyc-2a`); GCP zones are
    the region plus a letter (`europe-west4-a`). On an existing cluster the location is a node
    label value, which only the cluster knows.
    """
    if cloud is Cloud.AWS:
        return location.startswith(f"{region}-") and len(location) > len(region) + 3
    if cloud is Cloud.GCP:
        return location.startswith(f"{region}-") and len(location) == len(region) + 2
    return True


# Which zones of each catalog GCP region offer each accelerator: a GPU node pool must sit in
# one of them, else GKE cannot create its nodes. Source: Google Cloud's "GPU regions and zones
# availability" page (compute/docs/gpus/gpu-regions-zones) is an interactive table that no
# stored copy holds, so these rows were read on 2026-11-30 from SkyPilot's GCP catalog, which
# is generated from the Compute Engine API: skypilot-org/skypilot-catalog
# catalogs/v7/gcp/vms.csv at commit 017e2502fb63c7a28757acd94002b2d6099d3e3d. T4, V100 and
# A100: its accelerator rows (`,,,T4,1,...`, `,,,V100,1,...`, `,,,A100,1,...`, the A100 40GB);
# L4: the zones of its g2-standard-4 rows (G2 machines carry L4); H100: the zones of its
# a3-highgpu-1g rows (A3 High carries H100 80GB). Only what was read is recorded: a region
# absent here offers none of these, and the config refuses a GPU pool there.
GCP_GPU_ZONES: dict[str, dict[Accelerator, tuple[str, ...]]] = {
    "us-central1": {
        Accelerator.T4: ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
        Accelerator.L4: ("us-central1-a", "us-central1-b", "us-central1-c"),
        Accelerator.V100: ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
        Accelerator.A100: ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
        Accelerator.H100: ("us-central1-a", "us-central1-b", "us-central1-c"),
    },
    "us-east1": {
        Accelerator.T4: ("us-east1-c", "us-east1-d"),
        Accelerator.L4: ("us-east1-b", "us-east1-c", "us-east1-d"),
        Accelerator.V100: ("us-east1-c",),
        Accelerator.A100: ("us-east1-b",),
    },
    "us-east4": {
        Accelerator.T4: ("us-east4-a", "us-east4-b", "us-east4-c"),
        Accelerator.L4: ("us-east4-a", "us-east4-c"),
        Accelerator.H100: ("us-east4-a", "us-east4-b", "us-east4-c"),
    },
    "us-west1": {
        Accelerator.T4: ("us-west1-a", "us-west1-b"),
        Accelerator.L4: ("us-west1-a", "us-west1-b", "us-west1-c"),
        Accelerator.V100: ("us-west1-a", "us-west1-b"),
        Accelerator.A100: ("us-west1-b",),
        Accelerator.H100: ("us-west1-a", "us-west1-b"),
    },
    "northamerica-northeast1": {
        Accelerator.T4: ("northamerica-northeast1-c",),
        Accelerator.L4: ("northamerica-northeast1-b",),
    },
    "southamerica-east1": {
        Accelerator.T4: ("southamerica-east1-a", "southamerica-east1-c"),
    },
    "europe-west1": {
        Accelerator.T4: ("europe-west1-b", "europe-west1-c", "europe-west1-d"),
        Accelerator.L4: ("europe-west1-b", "europe-west1-c"),
        Accelerator.H100: ("europe-west1-b", "europe-west1-c"),
    },
    "europe-west3": {
        Accelerator.T4: ("europe-west3-b",),
        Accelerator.L4: ("europe-west3-a", "europe-west3-b"),
        Accelerator.H100: ("europe-west3-c",),
    },
    "europe-west4": {
        Accelerator.T4: ("europe-west4-a", "europe-west4-b", "europe-west4-c"),
        Accelerator.L4: ("europe-west4-a", "europe-west4-b", "europe-west4-c"),
        Accelerator.V100: ("europe-west4-a", "europe-west4-b", "europe-west4-c"),
        Accelerator.A100: ("europe-west4-a", "europe-west4-b"),
        Accelerator.H100: ("europe-west4-b", "europe-west4-c"),
    },
    "europe-north1": {
        Accelerator.H100: ("europe-north1-c",),
    },
    "europe-west2": {
        Accelerator.T4: ("europe-west2-a", "europe-west2-b"),
        Accelerator.L4: ("europe-west2-a", "europe-west2-b"),
    },
    "asia-southeast1": {
        Accelerator.T4: ("asia-southeast1-a", "asia-southeast1-b", "asia-southeast1-c"),
        Accelerator.L4: ("asia-southeast1-a", "asia-southeast1-b", "asia-southeast1-c"),
        Accelerator.A100: ("asia-southeast1-b", "asia-southeast1-c"),
        Accelerator.H100: ("asia-southeast1-b", "asia-southeast1-c"),
    },
    "asia-northeast1": {
        Accelerator.T4: ("asia-northeast1-a", "asia-northeast1-c"),
        Accelerator.L4: ("asia-northeast1-a", "asia-northeast1-b", "asia-northeast1-c"),
        Accelerator.A100: ("asia-northeast1-a", "asia-northeast1-c"),
        Accelerator.H100: ("asia-northeast1-b",),
    },
    "asia-south1": {
        Accelerator.T4: ("asia-south1-a", "asia-south1-b"),
        Accelerator.L4: ("asia-south1-a", "asia-south1-b", "asia-south1-c"),
        Accelerator.H100: ("asia-south1-c",),
    },
}


def gcp_gpu_zones(region: str, accelerator: Accelerator) -> tuple[str, ...]:
    """The zones of a GCP region that offer an accelerator, sorted; empty when none does."""
    return tuple(sorted(GCP_GPU_ZONES.get(region, {}).get(accelerator, ())))
