"""Where each region sits for global routing: Route53 latency records name an AWS region and
Cloud DNS geo records a GCP region, whichever cloud serves the fleet's DNS. A region of the
other cloud (or an existing cluster, known only by its residency zone) is routed as the
nearest region of the DNS's cloud; regions that share a location are pooled behind it.

Coordinates are the regions' metro areas (approximate, to a tenth of a degree), from
https://aws.amazon.com/about-aws/global-infrastructure/regions_az/ and
https://cloud.google.com/about/locations; nearness is great-circle distance between them.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.catalog import Cloud, Residency
from components.config import Region

Point = tuple[float, float]  # latitude, longitude in degrees

# fmt: off
AWS_LOCATIONS: dict[str, Point] = {
    "us-east-1": (38.9, -77.4), "us-east-2": (40.0, -83.0), "us-west-1": (37.4, -121.9),
    "us-west-2": (45.8, -119.7), "ca-central-1": (45.5, -73.6), "ca-west-1": (51.0, -114.1),
    "mx-central-1": (20.6, -100.4), "sa-east-1": (-23.5, -46.6), "eu-west-1": (53.3, -6.3),
    "eu-west-2": (51.5, -0.1), "eu-west-3": (48.9, 2.4), "eu-central-1": (50.1, 8.7),
    "eu-central-2": (47.4, 8.5), "eu-north-1": (59.3, 18.1), "eu-south-1": (45.5, 9.2),
    "eu-south-2": (41.6, -0.9), "il-central-1": (32.1, 34.8), "me-south-1": (26.1, 50.6),
    "me-central-1": (24.5, 54.4), "af-south-1": (-33.9, 18.4), "ap-south-1": (19.1, 72.9),
    "ap-south-2": (17.4, 78.5), "ap-southeast-1": (1.3, 103.8), "ap-southeast-2": (-33.9, 151.2),
    "ap-southeast-3": (-6.2, 106.8), "ap-southeast-4": (-37.8, 145.0),
    "ap-southeast-5": (3.1, 101.7), "ap-southeast-7": (13.8, 100.5),
    "ap-northeast-1": (35.7, 139.7), "ap-northeast-2": (37.6, 127.0),
    "ap-northeast-3": (34.7, 135.5), "ap-east-1": (22.3, 114.2),
}

GCP_LOCATIONS: dict[str, Point] = {
    "us-central1": (41.3, -95.9), "us-east1": (33.2, -80.0), "us-east4": (39.0, -77.5),
    "us-east5": (40.0, -83.0), "us-south1": (32.8, -96.8), "us-west1": (45.6, -121.2),
    "us-west2": (34.1, -118.2), "us-west3": (40.8, -111.9), "us-west4": (36.2, -115.1),
    "northamerica-northeast1": (45.5, -73.6), "northamerica-northeast2": (43.7, -79.4),
    "northamerica-south1": (20.6, -100.4), "southamerica-east1": (-23.5, -46.6),
    "southamerica-west1": (-33.4, -70.6), "europe-west1": (50.4, 3.8), "europe-west2": (51.5, -0.1),
    "europe-west3": (50.1, 8.7), "europe-west4": (53.4, 6.8), "europe-west6": (47.4, 8.5),
    "europe-west8": (45.5, 9.2), "europe-west9": (48.9, 2.4), "europe-west10": (52.5, 13.4),
    "europe-west12": (45.1, 7.7), "europe-north1": (60.6, 27.0), "europe-north2": (59.3, 18.1),
    "europe-central2": (52.2, 21.0), "europe-southwest1": (40.4, -3.7), "me-west1": (32.1, 34.8),
    "me-central1": (25.3, 51.5), "me-central2": (26.4, 50.1), "africa-south1": (-26.2, 28.0),
    "asia-south1": (19.1, 72.9), "asia-south2": (28.6, 77.2), "asia-southeast1": (1.3, 103.8),
    "asia-southeast2": (-6.2, 106.8), "asia-east1": (24.1, 120.7), "asia-east2": (22.3, 114.2),
    "asia-northeast1": (35.7, 139.7), "asia-northeast2": (34.7, 135.5),
    "asia-northeast3": (37.6, 127.0), "australia-southeast1": (-33.9, 151.2),
    "australia-southeast2": (-37.8, 145.0),
}

LOCATIONS: dict[Cloud, dict[str, Point]] = {Cloud.AWS: AWS_LOCATIONS, Cloud.GCP: GCP_LOCATIONS}

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


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


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
