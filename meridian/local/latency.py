"""Where simulated users are, and how far (in round-trip milliseconds) every site is from them.

Inter-region round trips come from the one latency model (meridian/plan/latency.py: measured
AWS figures, with their source and date), which the layout planner uses too.

Each local region stands for one AWS region's metro; an edge site stands in a metro of its
own. Two assumptions, not measurements: a user reaches a server in their own metro in
LAST_MILE_MS (the shared model's), and a metro reaches its region's data centres in
METRO_TO_REGION_MS.
"""

from __future__ import annotations

from dataclasses import dataclass

from meridian.plan.latency import LAST_MILE_MS, measured_rtt_ms

METRO_TO_REGION_MS = 8.0

# The AWS region whose metro each residency zone of the local stack stands for.
RESIDENCY_METRO: dict[str, str] = {
    "us": "us-east-1",
    "eu": "eu-central-1",
    "apac": "ap-southeast-1",
    "uk": "eu-west-1",
}


def region_rtt_ms(a: str, b: str) -> float:
    return 0.0 if a == b else measured_rtt_ms(a, b)


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
