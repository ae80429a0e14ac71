"""Where users are: the metro catalog a demand file names its metros from.

Each metro has its coordinates (city centre, to a tenth of a degree), the residency zone its
users' data legally belongs to (components/catalog.py `Residency`; None where no catalog zone
covers the country, so demand there cannot ask for residency), and the AWS Local Zones in it
(edge candidates; AWS Local Zones locations page,
https://aws.amazon.com/about-aws/global-infrastructure/localzones/locations/, ids read
2026-11 *(confirm)* before a first `pulumi up`: a Local Zone must be opted in per account).
The AWS region standing in a metro, if any, is found from components/locations.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.catalog import Residency
from components.locations import Point
from meridian.plan.latency import Located, locate


@dataclass(frozen=True)
class Metro:
    name: str
    code: str  # IATA city code: short names for edge sites
    point: Point
    residency: Residency | None
    local_zones: tuple[str, ...] = field(default=())

    @property
    def located(self) -> Located:
        """The metro for the latency model: measured round trips apply where an AWS region stands in it."""
        return locate(self.point)


US, CA, SA, EU, UK, APAC = Residency.US, Residency.CA, Residency.SA, Residency.EU, Residency.UK, Residency.APAC

# fmt: off
METROS: dict[str, Metro] = {m.name: m for m in (
    # North America
    Metro("new-york", "nyc", (40.7, -74.0), US, ("us-east-1-nyc-2a",)),
    Metro("washington", "was", (38.9, -77.0), US),
    Metro("boston", "bos", (42.4, -71.1), US, ("us-east-1-bos-1a",)),
    Metro("chicago", "chi", (41.9, -87.6), US, ("us-east-1-chi-2a",)),
    Metro("atlanta", "atl", (33.7, -84.4), US, ("us-east-1-atl-2a",)),
    Metro("miami", "mia", (25.8, -80.2), US, ("us-east-1-mia-2a",)),
    Metro("dallas", "dfw", (32.8, -96.8), US, ("us-east-1-dfw-2a",)),
    Metro("denver", "den", (39.7, -105.0), US, ("us-west-2-den-2a",)),
    Metro("los-angeles", "lax", (34.1, -118.2), US, ("us-west-2-lax-1a",)),
    Metro("san-francisco", "sfo", (37.8, -122.4), US),
    Metro("seattle", "sea", (47.6, -122.3), US, ("us-west-2-sea-1a",)),
    Metro("toronto", "yto", (43.7, -79.4), CA),
    Metro("montreal", "ymq", (45.5, -73.6), CA),
    Metro("vancouver", "yvr", (49.3, -123.1), CA),
    Metro("mexico-city", "mex", (19.4, -99.1), None),
    # South America
    Metro("sao-paulo", "sao", (-23.5, -46.6), SA),
    Metro("rio-de-janeiro", "rio", (-22.9, -43.2), SA),
    Metro("buenos-aires", "bue", (-34.6, -58.4), SA, ("us-east-1-bue-1a",)),
    Metro("santiago", "scl", (-33.4, -70.6), SA, ("us-east-1-scl-1a",)),
    Metro("lima", "lim", (-12.0, -77.0), SA, ("us-east-1-lim-1a",)),
    Metro("bogota", "bog", (4.7, -74.1), SA),
    # Europe
    Metro("london", "lon", (51.5, -0.1), UK),
    Metro("dublin", "dub", (53.3, -6.3), EU),
    Metro("paris", "par", (48.9, 2.4), EU),
    Metro("frankfurt", "fra", (50.1, 8.7), EU),
    Metro("amsterdam", "ams", (52.4, 4.9), EU),
    Metro("hamburg", "ham", (53.6, 10.0), EU, ("eu-central-1-ham-1a",)),
    Metro("madrid", "mad", (40.4, -3.7), EU),
    Metro("milan", "mil", (45.5, 9.2), EU),
    Metro("stockholm", "sto", (59.3, 18.1), EU),
    Metro("warsaw", "waw", (52.2, 21.0), EU, ("eu-central-1-waw-1a",)),
    # Middle East and Africa
    Metro("dubai", "dxb", (25.2, 55.3), None),
    Metro("riyadh", "ruh", (24.7, 46.7), None),
    Metro("tel-aviv", "tlv", (32.1, 34.8), None),
    Metro("cairo", "cai", (30.0, 31.2), None),
    Metro("lagos", "los", (6.5, 3.4), None),
    Metro("nairobi", "nbo", (-1.3, 36.8), None),
    Metro("johannesburg", "jnb", (-26.2, 28.0), None),
    # South Asia
    Metro("mumbai", "bom", (19.1, 72.9), APAC),
    Metro("delhi", "del", (28.6, 77.2), APAC, ("ap-south-1-del-1a",)),
    Metro("bangalore", "blr", (13.0, 77.6), APAC),
    # East and South-East Asia
    Metro("singapore", "sin", (1.3, 103.8), APAC),
    Metro("jakarta", "jkt", (-6.2, 106.8), APAC),
    Metro("bangkok", "bkk", (13.8, 100.5), APAC, ("ap-southeast-1-bkk-1a",)),
    Metro("manila", "mnl", (14.6, 121.0), APAC, ("ap-southeast-1-mnl-1a",)),
    Metro("hong-kong", "hkg", (22.3, 114.2), APAC),
    Metro("taipei", "tpe", (25.0, 121.5), APAC, ("ap-northeast-1-tpe-1a",)),
    Metro("seoul", "sel", (37.6, 127.0), APAC),
    Metro("tokyo", "tyo", (35.7, 139.7), APAC),
    Metro("osaka", "osa", (34.7, 135.5), APAC),
    # Oceania
    Metro("sydney", "syd", (-33.9, 151.2), APAC),
    Metro("melbourne", "mel", (-37.8, 145.0), APAC),
    Metro("perth", "per", (-32.0, 115.9), APAC, ("ap-southeast-2-per-1a",)),
    Metro("auckland", "akl", (-36.8, 174.8), APAC, ("ap-southeast-2-akl-1a",)),
)}
# fmt: on
