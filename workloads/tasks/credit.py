"""`credit`: credit-risk scoring (will this loan default within a year?) with regional
covariate shift. Synthetic and fully determined by the seed and the region's name.

How the data is made (so the numbers can be reasoned about):
- Five borrower segments (students, young professionals, established households, retirees,
  small-business owners), each with its own distribution of the twelve features below.
- A region's customer base is a mix of segments drawn from Dirichlet(alpha) (small alpha:
  regions dominated by one or two segments), plus a regional income level (cost of living):
  P(x) differs by region.
- Default follows one logistic risk model shared by every region, so P(y | x) is the same
  everywhere: pure covariate shift, the case federated training should handle well.
- A region's generator is seeded by (seed, sha256(region name)): adding a region changes no
  other region's data. 20% of each region's examples are its test split.

Features are scaled by fixed, documented constants (not statistics of any region's data), so
every node normalizes identically without sharing anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from workloads.tasks.base import Shard
from workloads.tasks.mlp import two_hidden_layer_mlp
from workloads.tasks.splits import check_regions

FEATURES = (
    "log_income",  # natural log of yearly income, USD
    "age",  # years
    "debt_to_income",  # monthly debt payments / monthly income
    "credit_utilization",  # revolving balance / limit, 0..1
    "late_payments_12m",  # count
    "credit_history_years",
    "loan_to_income",  # requested amount / yearly income
    "employment_years",
    "open_accounts",
    "has_mortgage",  # 0 or 1
    "inquiries_6m",  # hard credit inquiries
    "savings_ratio",  # liquid savings / yearly income
)

SEGMENTS = ("student", "young_professional", "established", "retiree", "small_business")

# Per segment: mean of each feature (Poisson rate for counts, probability for has_mortgage).
_SEGMENT_MEANS = np.array(
    [
        # inc   age  dti   util  late hist loan emp  acc mort  inq  sav
        [9.6, 21, 0.20, 0.50, 0.50, 2, 0.40, 1, 2, 0.02, 2.0, 0.05],
        [10.9, 29, 0.30, 0.35, 0.30, 6, 0.30, 4, 4, 0.25, 1.2, 0.15],
        [11.3, 45, 0.30, 0.20, 0.15, 18, 0.25, 12, 6, 0.70, 0.6, 0.30],
        [10.4, 70, 0.15, 0.10, 0.10, 35, 0.10, 0, 4, 0.30, 0.3, 0.50],
        [11.0, 40, 0.45, 0.45, 0.60, 12, 0.60, 8, 7, 0.50, 1.5, 0.20],
    ],
    dtype=np.float64,
)
# Spread of the continuous features within a segment (counts and has_mortgage: unused).
_SEGMENT_SPREAD = np.array([0.35, 3.0, 0.08, 0.15, 0, 2.0, 0.12, 2.0, 0, 0, 0, 0.10])
_COUNT_FEATURES = (4, 8, 10)
_BINARY_FEATURES = (9,)
_REGION_INCOME_SHIFT_STD = 0.3  # log-income spread between regions (cost of living)

# Fixed scaling to roughly unit range.
_CENTER = np.array([10.8, 40, 0.3, 0.3, 0.3, 12, 0.3, 6, 4.5, 0.4, 1.0, 0.25], dtype=np.float32)
_SCALE = np.array([0.7, 15, 0.15, 0.2, 0.7, 10, 0.2, 5, 2.5, 0.5, 1.2, 0.2], dtype=np.float32)

_TEST_FRACTION = 0.2


def default_probability(raw: np.ndarray) -> np.ndarray:
    """The shared risk model P(default | x) on raw (unscaled) features."""
    inc, _age, dti, util, late, hist, loan, emp, _acc, _mort, inq, sav = raw.T
    score = (
        -1.6
        + 3.0 * (util - 0.3)
        + 0.7 * late
        + 3.0 * (dti - 0.3)
        + 2.0 * (loan - 0.3)
        - 0.8 * (inc - 10.8)
        - 0.04 * (hist - 10)
        - 0.05 * (emp - 5)
        + 0.25 * inq
        - 2.0 * sav
        + 1.0 * (util > 0.8) * (late >= 1)  # maxed-out and already late: compounding risk
    )
    return 1.0 / (1.0 + np.exp(-score))


def _region_rng(seed: int, region: str) -> np.random.Generator:
    digest = hashlib.sha256(region.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _borrowers(segments: np.ndarray, income_shift: float, rng: np.random.Generator) -> np.ndarray:
    means = _SEGMENT_MEANS[segments]
    raw = means + rng.standard_normal(means.shape) * _SEGMENT_SPREAD
    for col in _COUNT_FEATURES:
        raw[:, col] = rng.poisson(means[:, col])
    for col in _BINARY_FEATURES:
        raw[:, col] = rng.random(len(segments)) < means[:, col]
    raw[:, 0] += income_shift
    # Keep every feature in its physical range.
    raw[:, 1] = np.clip(raw[:, 1], 18, 95)
    raw[:, [2, 3, 6, 11]] = np.clip(raw[:, [2, 3, 6, 11]], 0, None)
    raw[:, 3] = np.clip(raw[:, 3], 0, 1)
    raw[:, [5, 7]] = np.clip(raw[:, [5, 7]], 0, raw[:, [1]] - 16)
    return raw


@dataclass(frozen=True)
class CreditTask:
    """Binary classification (1 = default) with an MLP over twelve scaled features."""

    name: str = "credit"
    examples_per_region: int = 2000
    hidden: int = 64
    input_shape: tuple[int, ...] = (len(FEATURES),)
    num_classes: int = 2

    def build_model(self) -> torch.nn.Module:
        return two_hidden_layer_mlp(self.input_shape[0], self.hidden, self.num_classes)

    def partition(self, regions: Sequence[str], seed: int, alpha: float) -> dict[str, Shard]:
        check_regions(regions)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        return {region: self._region_shard(region, seed, alpha) for region in regions}

    def _region_shard(self, region: str, seed: int, alpha: float) -> Shard:
        rng = _region_rng(seed, region)
        mix = rng.dirichlet(np.full(len(SEGMENTS), alpha))
        income_shift = rng.normal(0, _REGION_INCOME_SHIFT_STD)
        segments = rng.choice(len(SEGMENTS), size=self.examples_per_region, p=mix)
        raw = _borrowers(segments, income_shift, rng)
        y = (rng.random(len(raw)) < default_probability(raw)).astype(np.int64)
        x = ((raw - _CENTER) / _SCALE).astype(np.float32)
        n_test = int(len(x) * _TEST_FRACTION)
        return Shard(x_train=x[n_test:], y_train=y[n_test:], x_test=x[:n_test], y_test=y[:n_test])


CREDIT = CreditTask()
