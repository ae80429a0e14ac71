"""Where simulated users are, and how far (in round-trip milliseconds) every site is from them.

Inter-region figures are the average RTTs between EC2 instances of the table "Latency Between
AWS Global Regions", as reproduced in "AWS Regions" (A Computer Scientist Learns AWS, blog,
April 2017), rounded to 0.1 ms. Current figures, to re-check them against: CloudPing.co (live
inter-region matrix, since 2017) and the inter-Region latency of AWS Network Manager's
Infrastructure Performance (AWS documentation; median round trips between AWS probes).

Each local region stands for one AWS region's metro; an edge site stands in a metro of its
own. Two assumptions, not measurements: a user reaches a server in their own metro in
LAST_MILE_MS, and a metro reaches its region's data centres in METRO_TO_REGION_MS.
"""

from __future__ import annotations

from dataclasses import dataclass

LAST_MILE_MS = 5.0
METRO_TO_REGION_MS = 8.0

# Average RTT in ms between AWS regions (see the module docstring for the source).
_REGION_RTT_MS: dict[frozenset[str], float] = {
    frozenset({"us-east-1", "eu-west-1"}): 80.5,
    frozenset({"us-east-1", "eu-central-1"}): 88.7,
    frozenset({"us-east-1", "ap-southeast-1"}): 216.7,
    frozenset({"us-east-1", "ap-northeast-1"}): 145.3,
    frozenset({"eu-west-1", "eu-central-1"}): 19.6,
    frozenset({"eu-west-1", "ap-southeast-1"}): 239.0,
    frozenset({"eu-west-1", "ap-northeast-1"}): 212.4,
    frozenset({"eu-central-1", "ap-southeast-1"}): 325.9,
    frozenset({"eu-central-1", "ap-northeast-1"}): 236.5,
    frozenset({"ap-southeast-1", "ap-northeast-1"}): 73.8,
}

# The AWS region whose metro each residency zone of the local stack stands for.
RESIDENCY_METRO: dict[str, str] = {
    "us": "us-east-1",
    "eu": "eu-central-1",
    "apac": "ap-southeast-1",
    "uk": "eu-west-1",
}


def region_rtt_ms(a: str, b: str) -> float:
    if a == b:
        return 0.0
    try:
        return _REGION_RTT_MS[frozenset({a, b})]
    except KeyError:
        raise KeyError(f"no measured RTT between {a} and {b}; add it to {__name__}") from None


@dataclass(frozen=True)
class Place:
    """A metro (IATA-style code): the AWS region serving it, and whether it is that region's own."""

    name: str
    city: str
    aws_region: str
    in_region_metro: bool = True

    def rtt_ms(self, other: Place) -> float:
        """Round trip between two metros, by way of their regions' backbone."""
        if self.name == other.name:
            return LAST_MILE_MS
        hops = region_rtt_ms(self.aws_region, other.aws_region)
        detours = sum(METRO_TO_REGION_MS for p in (self, other) if not p.in_region_metro)
        return LAST_MILE_MS + hops + detours


METROS: dict[str, Place] = {
    p.name: p
    for p in (
        Place("nyc", "New York", "us-east-1", in_region_metro=False),
        Place("iad", "Virginia", "us-east-1"),
        Place("fra", "Frankfurt", "eu-central-1"),
        Place("dub", "Dublin", "eu-west-1"),
        Place("sin", "Singapore", "ap-southeast-1"),
        Place("nrt", "Tokyo", "ap-northeast-1"),
    )
}


@dataclass(frozen=True)
class Site:
    """A place that serves requests: a region's GPU server or an edge site's CPU server."""

    name: str
    region: str  # the Meridian region it belongs to
    place: Place
    is_edge: bool
    url: str = ""


def nearest(user: Place, sites: list[Site]) -> Site:
    """Latency-based routing, as the global DNS does: the site with the lowest RTT."""
    return min(sites, key=lambda site: (user.rtt_ms(site.place), site.is_edge is False))


def region_place(residency: str) -> Place:
    """A local region stands in the own metro of the AWS region of its residency zone."""
    aws_region = RESIDENCY_METRO[residency]
    return next(p for p in METROS.values() if p.aws_region == aws_region and p.in_region_metro)


def edge_site_place(location: str) -> Place:
    """The local stack names edge locations `<region>-<metro>`, e.g. `local-us-nyc`."""
    code = location.rsplit("-", 1)[-1]
    if code not in METROS:
        raise ValueError(f"edge location {location!r}: metro {code!r} is not one of {sorted(METROS)}")
    return METROS[code]
