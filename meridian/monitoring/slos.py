"""The service level objectives of the serving path, per region, and how their budgets burn.

Every regional server and every edge has an availability objective (share of requests not
answered 5xx or 429: a request refused for lack of capacity is unavailability the user saw)
and a latency objective (share of answered requests faster than a threshold, read from the
latency histogram's bucket at that threshold). Budgets are alerted on with the multi-window,
multi-burn-rate alerts of the Google SRE workbook ("Alerting on SLOs", table 5-8): a page when
2% of a 30-day budget burns in an hour or 5% in six hours, a ticket when 10% burns in three days
or a day's worth in a day; each long window is paired with a short one (1/12 of it) so an alert
resolves soon after the burn stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workloads.contract import MetricsApp


class Severity(StrEnum):
    """The `severity` label, in kube-prometheus-stack's vocabulary so one Alertmanager route
    serves its rules and ours: critical pages, warning opens a ticket, info only informs."""

    PAGE = "critical"
    TICKET = "warning"
    INFO = "info"


@dataclass(frozen=True)
class BurnRate:
    """The error ratio over both windows exceeds `factor` times the budget."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class BurnAlert:
    """One alert per SLO and speed: it fires when any of its burn rates holds."""

    suffix: str  # of the alert's name
    severity: Severity
    rates: tuple[BurnRate, ...]


BURN_ALERTS = (
    BurnAlert("FastBurn", Severity.PAGE, (BurnRate("1h", "5m", 14.4), BurnRate("6h", "30m", 6))),
    BurnAlert("SlowBurn", Severity.TICKET, (BurnRate("1d", "2h", 3), BurnRate("3d", "6h", 1))),
)

_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def seconds(window: str) -> int:
    """`5m` -> 300: the windows here are whole minutes, hours or days."""
    return int(window[:-1]) * _SECONDS[window[-1]]


# Every window an alert reads, shortest first: each gets a recording rule per SLO.
WINDOWS = tuple(
    sorted({w for alert in BURN_ALERTS for rate in alert.rates for w in (rate.long, rate.short)}, key=seconds)
)

REQUESTS = "meridian_inference_requests_total"
LATENCY = "meridian_inference_request_duration_seconds"
RECORDED_ERROR_RATIO = "slo:sli_error:ratio_rate"  # + window; labels region, app, slo


class Sli(StrEnum):
    AVAILABILITY = "availability"
    LATENCY = "latency"


@dataclass(frozen=True)
class Slo:
    app: MetricsApp
    sli: Sli
    objective: float  # the share of good events over 30 days
    threshold_s: float = 0.0  # latency SLIs: an answer is good when faster (a histogram bucket bound)

    @property
    def name(self) -> str:
        return f"{self.app}-{self.sli}"

    @property
    def title(self) -> str:
        """`ServerAvailability`: the stem of the alerts' names."""
        return f"{self.app.value.capitalize()}{self.sli.value.capitalize()}"

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)

    @property
    def statement(self) -> str:
        """The objective in words (runbook, alert summaries)."""
        percent = f"{self.objective * 100:g}%"
        if self.sli is Sli.LATENCY:
            return f"{percent} of {self.app} answers within {self.threshold_s * 1000:g} ms"
        return f"{percent} of {self.app} requests answered without a 5xx or 429"

    def error_ratio(self, window: str, matchers: str = "") -> str:
        """The share of bad events over `window`, per region: the SLI's complement. `matchers`
        narrows the series (`,region=~"$region"` on a dashboard)."""
        app = f'app="{self.app}"{matchers}'
        if self.sli is Sli.LATENCY:
            fast = f'sum by (region, app) (rate({LATENCY}_bucket{{{app},le="{self.threshold_s:g}"}}[{window}]))'
            answered = f"sum by (region, app) (rate({LATENCY}_count{{{app}}}[{window}]))"
            return f"1 - ({fast} / {answered})"
        total = f"sum by (region, app) (rate({REQUESTS}{{{app}}}[{window}]))"
        bad = f'sum by (region, app) (rate({REQUESTS}{{{app},status=~"5..|429"}}[{window}]))'
        # A client library creates the 5xx series at the first 5xx: until then the ratio is 0, not absent.
        return f"({bad} or 0 * {total}) / {total}"

    def recorded(self, window: str) -> str:
        return f'{RECORDED_ERROR_RATIO}{window}{{slo="{self.name}"}}'

    def burn_expr(self, alert: BurnAlert) -> str:
        """The workbook's alert: both windows of any pair above `factor` times the budget."""
        pairs = [
            f"({self.recorded(r.long)} > {r.factor:g} * {self.budget:g}"
            f" and {self.recorded(r.short)} > {r.factor:g} * {self.budget:g})"
            for r in alert.rates
        ]
        return "\nor\n".join(pairs)


SLOS = (
    Slo(MetricsApp.SERVER, Sli.AVAILABILITY, 0.999),
    Slo(MetricsApp.SERVER, Sli.LATENCY, 0.99, threshold_s=0.25),
    # An edge answers on its own when its region fails (fallback), so its availability is its own.
    Slo(MetricsApp.EDGE, Sli.AVAILABILITY, 0.999),
    # Escalated answers include the round trip to the region: a looser bound than the server's.
    Slo(MetricsApp.EDGE, Sli.LATENCY, 0.99, threshold_s=0.5),
)


def slo_file(slo: Slo) -> str:
    """The rule file holding an SLO's recordings and burn alerts (monitoring/rules/<file>.yaml)."""
    return f"slo-{slo.name}"
