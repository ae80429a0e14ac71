"""Round trips between places: measured where a public table has the pair, modelled from distance
where it does not. The one latency model: the layout planner and the local stack's simulated
users (meridian/local/latency.py) both read it.

Measured: rtt.yaml, CloudPing.co's p50 between AWS regions (source and date in the file).
Modelled: `fixed_ms + route_factor x 2 x great-circle km / FIBRE_KM_PER_MS`. Light in fibre
covers about 204 km per ms (refractive index 1.468); cables run longer than the great circle
(the route factor) and routers, hand-offs and the hosts' own stacks add a fixed term. Both are
fitted by least squares on the measured pairs up to CALIBRATION_MAX_KM apart (`calibrate`), and
the fit's error on those pairs is reported (`meridian plan --calibration`, README). Farther
apart, cables' detours dominate (Cape Town to Melbourne runs by way of Europe) and no one line
fits both; the planner compares round trips with SLOs of tens of milliseconds, which only
pairs within that range can meet.

A user reaches a server in their own metro in LAST_MILE_MS (an assumption, not a measurement):
two places within METRO_RADIUS_KM are one metro, with no backbone between them. The tables give
the median; a user's p95 round trip is taken as NETWORK_P95_OVER_P50 times it (an assumption:
queues and retransmits on the path, beyond the distance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from components.locations import AWS_LOCATIONS, Point, distance_km

RTT_FILE = Path(__file__).with_name("rtt.yaml")
FIBRE_KM_PER_MS = 299_792.458 / 1.468 / 1000
LAST_MILE_MS = 5.0
METRO_RADIUS_KM = 50.0
CALIBRATION_MAX_KM = 5000.0
NETWORK_P95_OVER_P50 = 1.15

Pair = frozenset[str]


@cache
def measured_pairs() -> dict[Pair, float]:
    """rtt.yaml: measured round trip per unordered pair of AWS regions."""
    pairs = yaml.safe_load(RTT_FILE.read_text())["pairs"]
    out: dict[Pair, float] = {}
    for key, ms in pairs.items():
        a, b = str(key).split()
        out[frozenset({a, b})] = float(ms)
    return out


def measured_rtt_ms(a: str, b: str) -> float:
    """The measured round trip between two AWS regions (KeyError when no table has the pair)."""
    try:
        return measured_pairs()[frozenset({a, b})]
    except KeyError:
        raise KeyError(f"no measured RTT between {a} and {b}; add it to meridian/plan/{RTT_FILE.name}") from None


@dataclass(frozen=True)
class DistanceModel:
    fixed_ms: float
    route_factor: float

    def rtt_ms(self, km: float) -> float:
        return self.fixed_ms + self.route_factor * 2 * km / FIBRE_KM_PER_MS


@dataclass(frozen=True)
class Calibration:
    """The distance model fitted on measured pairs, and its error on those same pairs."""

    model: DistanceModel
    pairs: int
    mae_ms: float
    max_error_ms: float
    worst_pair: tuple[str, str]


def calibrate(measured: Mapping[Pair, float], where: Mapping[str, Point]) -> Calibration:
    """Least squares of `rtt = fixed + factor x (2 km / fibre speed)` over the measured pairs."""
    rows = [(2 * _km(pair, where) / FIBRE_KM_PER_MS, ms, pair) for pair, ms in measured.items()]
    n = len(rows)
    mean_x = sum(x for x, _, _ in rows) / n
    mean_y = sum(y for _, y, _ in rows) / n
    factor = sum((x - mean_x) * (y - mean_y) for x, y, _ in rows) / sum((x - mean_x) ** 2 for x, _, _ in rows)
    model = DistanceModel(fixed_ms=mean_y - factor * mean_x, route_factor=factor)
    errors = [(abs(model.fixed_ms + factor * x - y), pair) for x, y, pair in rows]
    worst, worst_pair = max(errors, key=lambda e: e[0])
    a, b = sorted(worst_pair)
    return Calibration(model, n, sum(e for e, _ in errors) / n, worst, (a, b))


def _km(pair: Pair, where: Mapping[str, Point]) -> float:
    a, b = sorted(pair)
    return distance_km(where[a], where[b])


@cache
def calibration() -> Calibration:
    """The model fitted on rtt.yaml's pairs within CALIBRATION_MAX_KM of each other."""
    return calibrate(
        {p: ms for p, ms in measured_pairs().items() if _km(p, AWS_LOCATIONS) <= CALIBRATION_MAX_KM}, AWS_LOCATIONS
    )


@dataclass(frozen=True)
class Located:
    """A place for the model: where it is, and the AWS region standing in its metro, if any (whose
    measured round trips then apply to it)."""

    point: Point
    aws_region: str | None = None


def locate(point: Point) -> Located:
    """A place, with the AWS region standing in its metro if there is one."""
    region = min(AWS_LOCATIONS, key=lambda r: distance_km(point, AWS_LOCATIONS[r]))
    return Located(point, region if distance_km(point, AWS_LOCATIONS[region]) <= METRO_RADIUS_KM else None)


def network_rtt_ms(a: Located, b: Located) -> float:
    """Round trip between two places over the backbone: none inside one metro, measured between
    two AWS regions' metros where the table has them, modelled otherwise."""
    km = distance_km(a.point, b.point)
    if km <= METRO_RADIUS_KM:
        return 0.0
    if a.aws_region and b.aws_region and a.aws_region != b.aws_region:
        pair = frozenset({a.aws_region, b.aws_region})
        if pair in measured_pairs():
            return measured_pairs()[pair]
    return calibration().model.rtt_ms(km)


def user_latency_ms(
    user: Located, server: Located, serving_p50_ms: float, serving_p95_ms: float
) -> tuple[float, float]:
    """(p50, p95) a user sees: last mile and backbone, then the server's own time."""
    network = LAST_MILE_MS + network_rtt_ms(user, server)
    return network + serving_p50_ms, network * NETWORK_P95_OVER_P50 + serving_p95_ms
