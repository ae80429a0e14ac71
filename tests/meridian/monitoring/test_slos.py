"""The SLO definition: the SRE workbook's burn rates, and error ratios that read the contract."""

from __future__ import annotations

import pytest

from meridian.monitoring.alerts import ALERTS, Alert, Scenario
from meridian.monitoring.slos import BURN_ALERTS, SLOS, WINDOWS, Severity, seconds
from tests.meridian.monitoring.fleet_series import LATENCY_BOUNDS

THIRTY_DAYS = 30 * 86400


def test_pages_and_tickets_burn_the_budget_shares_of_the_sre_workbook() -> None:
    """Table 5-8: page on 2% of a 30-day budget in 1h or 5% in 6h; ticket on 10% in 3d or
    what a day's share is in a day; each short window is 1/12 of its long one."""
    spent = {
        alert.severity: [(r.long, round(r.factor * seconds(r.long) / THIRTY_DAYS, 3)) for r in alert.rates]
        for alert in BURN_ALERTS
    }
    assert spent == {Severity.PAGE: [("1h", 0.02), ("6h", 0.05)], Severity.TICKET: [("1d", 0.1), ("3d", 0.1)]}
    for alert in BURN_ALERTS:
        for rate in alert.rates:
            assert seconds(rate.long) == 12 * seconds(rate.short)


def test_every_window_is_recorded_shortest_first() -> None:
    assert WINDOWS == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def test_servers_and_edges_each_have_an_availability_and_a_latency_slo() -> None:
    assert {slo.name: slo.objective for slo in SLOS} == {
        "server-availability": 0.999,
        "server-latency": 0.99,
        "edge-availability": 0.999,
        "edge-latency": 0.99,
    }


def test_a_latency_bound_is_one_of_the_servers_histogram_buckets() -> None:
    for slo in SLOS:
        if slo.threshold_s:
            assert slo.threshold_s in LATENCY_BOUNDS, slo.name


def test_an_alert_without_a_firing_or_a_quiet_scenario_is_refused() -> None:
    quiet = Scenario("quiet", {"up": "1x10"}, "5m")
    with pytest.raises(ValueError, match="fires and one in which it stays quiet"):
        Alert("MeridianUntested", "platform", "up == 0", Severity.INFO, "s", "r", (quiet,))


def test_alert_names_are_unique() -> None:
    names = [alert.name for alert in ALERTS]
    assert len(names) == len(set(names))
