"""Where each region sits for global routing: Route53 latency records name an AWS region and
Cloud DNS geo records a GCP region, whichever cloud serves the fleet's DNS. A region of the
other cloud (or an existing cluster, known only by its residency zone) is routed as the
nearest region of the DNS's cloud; regions that share a location are pooled behind it.

Coordinates and great-circle distance live in components/locations.py (pure data, shared with
the layout planner).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.catalog import Cloud, Residency
from components.config import Region
from components.locations import LOCATIONS, Point, distance_km

# fmt: off
# An existing cluster is known only by its residency zone: routed from the zone's main metro.
RESIDENCY_ANCHORS: dict[Residency, Point] = {
    Residency.US: (38.9, -77.4),
    Residency.CA: (43.7, -79.4),
    Residency.SA: (-23.5, -46.6),
    Residency.EU: (50.1, 8.7),
    Residency.UK: (51.5, -0.1),
    Residency.APAC: (1.3, 103.8),
}
# fmt: on


def _position(region: Region) -> Point:
    if region.cloud is Cloud.KUBERNETES:
        return RESIDENCY_ANCHORS[region.residency]
    return LOCATIONS[region.cloud][region.name]


def routing_location(region: Region, dns_cloud: Cloud) -> str:
    """The DNS cloud's region nearest to this one (a region of that cloud is its own)."""
    if dns_cloud is Cloud.KUBERNETES:
        raise ValueError("global DNS is served by AWS (Route53) or GCP (Cloud DNS)")
    locations = LOCATIONS[dns_cloud]
    if region.cloud is dns_cloud:
        return region.name
    here = _position(region)
    return min(locations, key=lambda name: distance_km(here, locations[name]))


def routing_locations(regions: list[Region], dns_cloud: Cloud) -> dict[str, str]:
    """Region name -> its routing location in `dns_cloud`."""
    return {r.name: routing_location(r, dns_cloud) for r in regions}


def pools(endpoints: list[RegionalEndpoint]) -> dict[str, list[RegionalEndpoint]]:
    """Endpoints grouped by routing location, in order: one location answers for its pool."""
    grouped: dict[str, list[RegionalEndpoint]] = {}
    for endpoint in endpoints:
        grouped.setdefault(endpoint.location, []).append(endpoint)
    return grouped


def is_ip(endpoint: str) -> bool:
    """Load balancers answer with an IP (GCP, many on-prem) or a hostname (AWS ELB)."""
    try:
        ipaddress.ip_address(endpoint)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RegionalEndpoint:
    """One region's public front door, as global routing sees it."""

    region: str
    host: str  # its own public name, <region>.<domain> (components/front_door.py)
    address: pulumi.Output[str]  # hostname or IP of the region's inference load balancer
    location: str  # its routing location (see routing_locations)
    # Each edge site's public name (<site>.<region>.<domain>) -> its load balancer's address
    edges: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutedName:
    """What global routing answers, whichever cloud's DNS serves it: `name` (under the zone's
    `domain`) resolves to the nearest healthy endpoint, each probed over HTTPS on `port` at
    `health_check_path`; every endpoint's own name and its edge sites' names answer with their
    load balancers."""

    domain: str  # the zone's domain
    name: str  # the routed name, under domain
    endpoints: list[RegionalEndpoint]
    health_check_path: str
    port: int
    ttl: int


@dataclass(frozen=True)
class Zone:
    """The DNS zone the fleet's records go into, whichever cloud serves it: `id` is what records
    name it by (a Route53 hosted zone id, a Cloud DNS managed zone's name). `name_servers` are
    the ones to delegate the domain to; None for an existing zone, delegated already."""

    id: pulumi.Output[str]
    name_servers: pulumi.Output[Sequence[str]] | None


def existing_zone_problem(domain: str, zone_dns_name: str, public: bool) -> str | None:
    """Why an existing zone cannot hold the stack's records, or None: it must be public (health
    checks, certificate validation and clients resolve from the internet) and serve the domain
    itself or a parent of it (`example.com` can hold `inference.api.example.com`)."""
    zone, wanted = zone_dns_name.rstrip(".").lower(), domain.rstrip(".").lower()
    if not public:
        return f"zone {zone} is private: the fleet's names must resolve on the internet"
    if wanted != zone and not wanted.endswith(f".{zone}"):
        return f"zone {zone} cannot hold names under {wanted}: give the zone of {wanted} or of a parent domain"
    return None
