"""The one latency model: measured round trips where the table has them, a distance model fitted
on those same pairs elsewhere, and an error reported from those pairs."""

from __future__ import annotations

import pytest

from components.locations import AWS_LOCATIONS, GCP_LOCATIONS, distance_km
from meridian.local.latency import region_rtt_ms
from meridian.plan.latency import (
    CALIBRATION_MAX_KM,
    LAST_MILE_MS,
    calibration,
    locate,
    measured_pairs,
    measured_rtt_ms,
    network_rtt_ms,
    user_latency_ms,
)
from meridian.plan.metros import METROS
from meridian.plan.report import calibration_json


def test_the_reported_error_is_the_fit_on_the_measured_pairs() -> None:
    fit = calibration()
    pairs = {
        p: ms
        for p, ms in measured_pairs().items()
        if distance_km(*(AWS_LOCATIONS[r] for r in sorted(p))) <= CALIBRATION_MAX_KM
    }
    errors = [
        abs(fit.model.rtt_ms(distance_km(*(AWS_LOCATIONS[r] for r in sorted(p)))) - ms) for p, ms in pairs.items()
    ]
    assert fit.pairs == len(pairs) > 100
    assert fit.mae_ms == pytest.approx(sum(errors) / len(errors))
    assert fit.max_error_ms == pytest.approx(max(errors))
    reported = calibration_json(fit)
    assert reported["maeMs"] == round(fit.mae_ms, 1)
    assert reported["maxErrorMs"] == round(fit.max_error_ms, 1)


def test_the_fitted_model_is_physical() -> None:
    # cables run longer than the great circle, and routers add a positive fixed term
    model = calibration().model
    assert 1.0 < model.route_factor < 3.0
    assert 0.0 < model.fixed_ms < 20.0


def test_measured_pairs_win_over_the_model_and_the_local_stack_reads_the_same_figures() -> None:
    frankfurt, dublin = locate(AWS_LOCATIONS["eu-central-1"]), locate(AWS_LOCATIONS["eu-west-1"])
    assert network_rtt_ms(frankfurt, dublin) == measured_rtt_ms("eu-central-1", "eu-west-1") == 27.1
    assert region_rtt_ms("eu-central-1", "eu-west-1") == measured_rtt_ms("eu-west-1", "eu-central-1")


def test_a_gcp_region_is_modelled_from_its_distance() -> None:
    iowa, virginia = locate(GCP_LOCATIONS["us-central1"]), locate(AWS_LOCATIONS["us-east-1"])
    km = distance_km(GCP_LOCATIONS["us-central1"], AWS_LOCATIONS["us-east-1"])
    assert iowa.aws_region is None
    assert network_rtt_ms(iowa, virginia) == pytest.approx(calibration().model.rtt_ms(km))


def test_a_user_in_the_servers_metro_pays_the_last_mile_and_the_server() -> None:
    tokyo = METROS["tokyo"].located
    p50, p95 = user_latency_ms(tokyo, locate(AWS_LOCATIONS["ap-northeast-1"]), serving_p50_ms=8, serving_p95_ms=15)
    assert p50 == LAST_MILE_MS + 8
    assert p95 > p50


def test_the_catalog_spans_every_continent_with_at_least_thirty_metros() -> None:
    assert len(METROS) >= 30
    lats_lons = [m.point for m in METROS.values()]
    assert any(lat < -30 and lon > 110 for lat, lon in lats_lons)  # Oceania
    assert any(lat < 0 and lon < -30 for lat, lon in lats_lons)  # South America
    assert any(-35 < lat < 35 and 0 < lon < 50 for lat, lon in lats_lons)  # Africa / Middle East
    assert len({m.code for m in METROS.values()}) == len(METROS)
