"""Record-level differential privacy in each region: DP-SGD (workloads/tasks/private.py) with a
budget (ε, δ) for the whole run, per region.

Before its first private fit a region derives the noise multiplier from the target (ε, δ), the
run's rounds x local epochs, the batch size and its own number of training examples: the
smallest sigma whose RDP-accounted ε after every planned step is within EPSILON_TOLERANCE below the
target (Opacus `get_noise_multiplier`, RDP accountant). Every step after that is accounted.

The accountant's state (its (sigma, q, steps) history) lives in the node's Context state: the
SuperNode keeps a run's Context across messages and hands it to each fresh ClientApp process
(Flower's SecAgg+ mod keeps its protocol state the same way). So a region's spend accumulates
over the run, and is lost only with the SuperNode itself (a restarted node starts the run's
account over: the README says so).

Each train reply reports the spent ε and the ε one more identical round would reach; the
ServerApp (guarded_strategy.py) ends the run cleanly before the round that would take any
region past its budget. A node also refuses, by itself, a fit that would overspend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from flwr.app import ConfigRecord, Context, MetricRecord

from workloads.trainer.settings import TrainerSettings

STATE_KEY = "meridian-dp"
EPSILON_TOLERANCE = 0.01  # calibration: the planned run spends within this much below the target

# Reply metrics of a private fit.
EPSILON = "dp-epsilon"  # ε spent by this region so far in the run (after this fit)
EPSILON_NEXT = "dp-epsilon-next"  # ε after one more fit like this one
NOISE_MULTIPLIER = "dp-noise-multiplier"
TARGET_EPSILON = "dp-target-epsilon"
DELTA = "dp-delta"


class BudgetExhausted(RuntimeError):
    """This region's next fit would spend more than its ε: it does not train."""


def planned_steps(settings: TrainerSettings, examples: int) -> int:
    from workloads.tasks.private import steps_per_epoch

    return settings.rounds * settings.local_epochs * steps_per_epoch(examples, settings.batch_size)


def noise_multiplier_for(settings: TrainerSettings, examples: int) -> float:
    """sigma that spends the region's budget over the whole planned run (or the configured sigma)."""
    if settings.dp_noise_multiplier > 0:
        return settings.dp_noise_multiplier
    from opacus.accountants.utils import get_noise_multiplier

    from workloads.tasks.private import ACCOUNTANT, ALPHAS, sample_rate

    return float(
        get_noise_multiplier(
            target_epsilon=settings.dp_epsilon,
            target_delta=settings.dp_delta,
            sample_rate=sample_rate(examples, settings.batch_size),
            steps=planned_steps(settings, examples),
            accountant=ACCOUNTANT,
            epsilon_tolerance=EPSILON_TOLERANCE,
            alphas=ALPHAS,
        )
    )


@dataclass
class RegionAccount:
    """One region's privacy account for one run, kept in its Context state."""

    noise_multiplier: float
    history: list[tuple[float, float, int]]

    @classmethod
    def load(cls, context: Context, settings: TrainerSettings, examples: int) -> RegionAccount:
        record = context.state.config_records.get(STATE_KEY)
        if record is None:
            return cls(noise_multiplier_for(settings, examples), [])
        history = [(float(s), float(q), int(n)) for s, q, n in json.loads(str(record["history"]))]
        return cls(float(str(record["noise-multiplier"])), history)

    def save(self, context: Context) -> None:
        context.state.config_records[STATE_KEY] = ConfigRecord(
            {"noise-multiplier": repr(self.noise_multiplier), "history": json.dumps(self.history)}
        )

    def spent(self, delta: float) -> float:
        from workloads.tasks.private import epsilon

        return epsilon(self.history, delta)

    def after_fit(self, settings: TrainerSettings, examples: int) -> float:
        """ε once one more fit of `local-epochs` on `examples` is accounted."""
        from workloads.tasks.private import epsilon, sample_rate, steps_per_epoch

        steps = settings.local_epochs * steps_per_epoch(examples, settings.batch_size)
        fit = (self.noise_multiplier, sample_rate(examples, settings.batch_size), steps)
        return epsilon([*self.history, fit], settings.dp_delta)


def within(spend: float, budget: float) -> bool:
    return spend <= budget * (1 + 1e-9)


def check_budget(account: RegionAccount, settings: TrainerSettings, examples: int) -> None:
    """BudgetExhausted unless the next fit stays within the region's ε."""
    projected = account.after_fit(settings, examples)
    if not within(projected, settings.dp_epsilon):
        spent = account.spent(settings.dp_delta)
        raise BudgetExhausted(
            f"privacy budget: this fit would take the region to ε={projected:.3f} > dp-epsilon="
            f"{settings.dp_epsilon:g} (spent so far ε={spent:.3f} at δ={settings.dp_delta:g}): not training"
        )


def reply_metrics(account: RegionAccount, settings: TrainerSettings, examples: int) -> MetricRecord:
    next_fit = account.after_fit(settings, examples)
    return MetricRecord(
        {
            EPSILON: account.spent(settings.dp_delta),
            EPSILON_NEXT: next_fit if math.isfinite(next_fit) else 1e300,
            NOISE_MULTIPLIER: account.noise_multiplier,
            TARGET_EPSILON: settings.dp_epsilon,
            DELTA: settings.dp_delta,
        }
    )
