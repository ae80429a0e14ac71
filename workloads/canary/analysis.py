"""The judgement: a candidate version against the stable one, on one window of live numbers.

Pure: `decide` sees only the two versions' `VersionStats` and the thresholds, so the rules are
tested on numbers alone, and the evidence it returns is what the controller logs with each
decision (every number compared, and the threshold it was compared with).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Thresholds:
    """`inference.canary.analysis` (components/config.py CanaryAnalysis), as the flags carry it."""

    window_seconds: int
    min_requests: int
    max_error_rate_increase: float
    max_p99_ratio: float
    min_agreement: float
    max_accuracy_drop: float
    min_labelled: int


@dataclass(frozen=True)
class VersionStats:
    """One version's numbers over the window, summed over the region's servers and edges."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    p99_seconds: float = math.nan  # NaN: no answered request in the window
    agree: float = 0.0  # shadowed candidate rows whose top-1 matched stable's (candidate only)
    disagree: float = 0.0
    correct: float = 0.0  # fed-back labels that matched the answer
    incorrect: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def labelled(self) -> float:
        return self.correct + self.incorrect

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else math.nan

    @property
    def shadowed(self) -> float:
        return self.agree + self.disagree

    @property
    def agreement(self) -> float:
        return self.agree / self.shadowed if self.shadowed else math.nan


@dataclass(frozen=True)
class Verdict:
    decision: Decision | None  # None: not enough evidence yet
    reason: str
    evidence: str


def decide(stable: VersionStats, candidate: VersionStats, t: Thresholds) -> Verdict:
    """Roll back on the first failed check (errors, latency, then accuracy where enough labels
    came back for both versions, else agreement with stable); promote when every check passed;
    no decision until both versions answered `min_requests` in the window."""
    evidence = _evidence(stable, candidate, t)
    if min(stable.requests, candidate.requests) < t.min_requests:
        return Verdict(None, f"waiting for {t.min_requests} requests per version", evidence)
    increase = candidate.error_rate - stable.error_rate
    if increase > t.max_error_rate_increase:
        return Verdict(Decision.ROLLED_BACK, f"error rate +{increase:.4f} > {t.max_error_rate_increase:g}", evidence)
    ratio = candidate.p99_seconds / stable.p99_seconds if stable.p99_seconds > 0 else math.nan
    if ratio > t.max_p99_ratio:  # NaN (no latency yet on one side) compares False: not a failure
        return Verdict(Decision.ROLLED_BACK, f"p99 ratio {ratio:.2f} > {t.max_p99_ratio:g}", evidence)
    if min(stable.labelled, candidate.labelled) >= t.min_labelled:
        drop = stable.accuracy - candidate.accuracy
        if drop > t.max_accuracy_drop:
            return Verdict(Decision.ROLLED_BACK, f"accuracy drop {drop:.4f} > {t.max_accuracy_drop:g}", evidence)
        return Verdict(Decision.PROMOTED, "errors, latency and accuracy within bounds", evidence)
    if not candidate.shadowed:
        return Verdict(None, "waiting for labels or shadowed agreement", evidence)
    if candidate.agreement < t.min_agreement:
        return Verdict(Decision.ROLLED_BACK, f"agreement {candidate.agreement:.4f} < {t.min_agreement:g}", evidence)
    return Verdict(Decision.PROMOTED, "errors, latency and agreement within bounds", evidence)


def _evidence(s: VersionStats, c: VersionStats, t: Thresholds) -> str:
    return (
        f"requests candidate={c.requests:.0f} stable={s.requests:.0f} (min {t.min_requests}); "
        f"error rate candidate={c.error_rate:.4f} stable={s.error_rate:.4f} "
        f"(max increase {t.max_error_rate_increase:g}); "
        f"p99 candidate={c.p99_seconds:.4f}s stable={s.p99_seconds:.4f}s (max ratio {t.max_p99_ratio:g}); "
        f"accuracy candidate={c.accuracy:.4f} ({c.labelled:.0f} labels) stable={s.accuracy:.4f} "
        f"({s.labelled:.0f} labels) (max drop {t.max_accuracy_drop:g}, min labels {t.min_labelled}); "
        f"agreement={c.agreement:.4f} ({c.shadowed:.0f} rows) (min {t.min_agreement:g}); "
        f"window {t.window_seconds}s"
    )
