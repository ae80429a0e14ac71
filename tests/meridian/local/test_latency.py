"""The latency model routes each user to the nearest site, as latency-based DNS would."""

from __future__ import annotations

import pytest

from meridian.local.latency import (
    LAST_MILE_MS,
    METROS,
    Site,
    edge_site_place,
    nearest,
    region_place,
    region_rtt_ms,
)

SITES = [
    Site("server-us", "us", region_place("us"), is_edge=False),
    Site("server-eu", "eu", region_place("eu"), is_edge=False),
    Site("server-apac", "apac", region_place("apac"), is_edge=False),
    Site("edge-nyc", "us", edge_site_place("local-us-nyc"), is_edge=True),
]


def test_round_trips_are_symmetric_and_measured() -> None:
    # CloudPing's p50 over a year (meridian/plan/rtt.yaml), the planner's figures too
    assert region_rtt_ms("us-east-1", "eu-west-1") == region_rtt_ms("eu-west-1", "us-east-1") == 69.6
    assert region_rtt_ms("us-east-1", "ap-southeast-1") == 218.9
    with pytest.raises(KeyError, match="no measured RTT"):
        region_rtt_ms("us-east-1", "cn-north-1")


@pytest.mark.parametrize(
    ("metro", "site"),
    [("nyc", "edge-nyc"), ("iad", "server-us"), ("fra", "server-eu"), ("dub", "server-eu"), ("nrt", "server-apac")],
)
def test_users_go_to_the_nearest_site(metro: str, site: str) -> None:
    assert nearest(METROS[metro], SITES).name == site


def test_a_user_in_the_edge_metro_pays_only_the_last_mile() -> None:
    assert METROS["nyc"].rtt_ms(edge_site_place("local-us-nyc")) == LAST_MILE_MS
    assert METROS["nyc"].rtt_ms(region_place("us")) > LAST_MILE_MS


def test_an_edge_location_must_name_a_known_metro() -> None:
    with pytest.raises(ValueError, match="metro 'xyz'"):
        edge_site_place("local-us-xyz")
