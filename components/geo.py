"""Where each region sits for global routing: Route53 latency records name an AWS region and
Cloud DNS geo records a GCP region, whichever cloud serves the fleet's DNS. A region of the
other cloud (or an existing cluster) is routed as its nearest region of the DNS's cloud.

Nearness is by metro distance (https://aws.amazon.com/about-aws/global-infrastructure/,
https://cloud.google.com/about/locations); candidates are ranked nearest first so two regions
of one stack never claim the same routing location.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi

from components.catalog import Cloud, Residency
from components.config import Region

# GCP region -> AWS regions nearest first.
NEAREST_AWS: dict[str, tuple[str, ...]] = {
    "us-central1": ("us-east-2", "us-east-1", "us-west-2"),
    "us-east1": ("us-east-1", "us-east-2"),
    "us-east4": ("us-east-1", "us-east-2"),
    "us-west1": ("us-west-2", "us-west-1"),
    "northamerica-northeast1": ("ca-central-1", "us-east-1"),
    "southamerica-east1": ("sa-east-1",),
    "europe-west1": ("eu-west-3", "eu-central-1", "eu-west-1"),
    "europe-west3": ("eu-central-1", "eu-west-3"),
    "europe-west4": ("eu-west-3", "eu-central-1", "eu-west-1"),
    "europe-north1": ("eu-north-1", "eu-central-1"),
    "europe-west2": ("eu-west-2", "eu-west-1"),
    "asia-southeast1": ("ap-southeast-1", "ap-southeast-3"),
    "asia-northeast1": ("ap-northeast-1", "ap-northeast-3"),
    "asia-south1": ("ap-south-1", "ap-south-2"),
}

# AWS region -> GCP regions nearest first.
NEAREST_GCP: dict[str, tuple[str, ...]] = {
    "us-east-1": ("us-east4", "us-east1"),
    "us-east-2": ("us-east5", "us-central1"),
    "us-west-2": ("us-west1", "us-west2"),
    "ca-central-1": ("northamerica-northeast1", "northamerica-northeast2"),
    "sa-east-1": ("southamerica-east1",),
    "eu-west-1": ("europe-west2", "europe-west1"),
    "eu-central-1": ("europe-west3", "europe-west4"),
    "eu-north-1": ("europe-north1", "europe-north2"),
    "eu-west-2": ("europe-west2", "europe-west1"),
    "ap-southeast-1": ("asia-southeast1", "asia-southeast2"),
    "ap-northeast-1": ("asia-northeast1", "asia-northeast2"),
    "ap-south-1": ("asia-south1", "asia-south2"),
    "ap-southeast-2": ("australia-southeast1", "australia-southeast2"),
}

# An existing cluster is only known by its residency zone.
RESIDENCY_AWS: dict[Residency, tuple[str, ...]] = {
    Residency.US: ("us-east-1", "us-east-2", "us-west-2", "us-west-1"),
    Residency.CA: ("ca-central-1", "ca-west-1"),
    Residency.SA: ("sa-east-1",),
    Residency.EU: ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1"),
    Residency.UK: ("eu-west-2",),
    Residency.APAC: ("ap-southeast-1", "ap-northeast-1", "ap-south-1", "ap-southeast-2"),
}
RESIDENCY_GCP: dict[Residency, tuple[str, ...]] = {
    Residency.US: ("us-central1", "us-east4", "us-west1", "us-east1"),
    Residency.CA: ("northamerica-northeast1", "northamerica-northeast2"),
    Residency.SA: ("southamerica-east1", "southamerica-west1"),
    Residency.EU: ("europe-west4", "europe-west1", "europe-west3", "europe-north1"),
    Residency.UK: ("europe-west2",),
    Residency.APAC: ("asia-southeast1", "asia-northeast1", "asia-south1", "australia-southeast1"),
}


def _candidates(region: Region, dns_cloud: Cloud) -> tuple[str, ...]:
    if region.cloud is dns_cloud:
        return (region.name,)
    if region.cloud is Cloud.KUBERNETES:
        return (RESIDENCY_AWS if dns_cloud is Cloud.AWS else RESIDENCY_GCP)[region.residency]
    nearest = NEAREST_AWS if dns_cloud is Cloud.AWS else NEAREST_GCP
    return nearest[region.name]


def routing_locations(regions: list[Region], dns_cloud: Cloud) -> dict[str, str]:
    """Region name -> the distinct location its record carries in `dns_cloud`'s routing policy.

    Regions of the DNS's own cloud claim their own name first; the others take their nearest
    free candidate. A region left without one is a stack that routing cannot express.
    """
    if dns_cloud is Cloud.KUBERNETES:
        raise ValueError("global DNS is served by AWS (Route53) or GCP (Cloud DNS)")
    taken: dict[str, str] = {}
    for region in sorted(regions, key=lambda r: r.cloud is not dns_cloud):
        free = [c for c in _candidates(region, dns_cloud) if c not in taken.values()]
        if not free:
            raise ValueError(
                f"region {region.name}: every nearby {dns_cloud} routing location "
                f"({', '.join(_candidates(region, dns_cloud))}) is already used by another region"
            )
        taken[region.name] = free[0]
    return {r.name: taken[r.name] for r in regions}


def is_ip(endpoint: str) -> bool:
    """Load balancers answer with an IP (GCP, many on-prem) or a hostname (AWS ELB)."""
    try:
        ipaddress.ip_address(endpoint)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RegionalEndpoint:
    """One region's inference load balancer, as global routing sees it."""

    region: str
    address: pulumi.Output[str]  # hostname or IP of the region's inference LoadBalancer
    location: str  # its routing location (see routing_locations)
