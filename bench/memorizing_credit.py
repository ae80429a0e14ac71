"""`credit`, set up to memorize: the privacy benchmark's membership-inference setting.

On the built-in `credit` (1,600 training records a region, a 64-wide MLP) the global model
generalizes, so a loss-threshold attack scores ~0.51 AUC with or without DP: there is no leak
for DP to close. A membership attack only shows something where training memorizes, so this
variant keeps the same regions, features and (noisy, Bernoulli) labels but gives each region
only its first 200 training records and a 256-wide MLP, trained for many local epochs: the
model fits those records' label noise, their losses fall below held-out ones, and the attack
gets a signal. Each region keeps its full held-out split (400 records), so the attack has as
many non-members as members. Nodes load it by dotted path: `bench.memorizing_credit:TASK`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workloads.tasks import Shard
from workloads.tasks.credit import CreditTask


@dataclass(frozen=True)
class MemorizingCredit(CreditTask):
    name: str = "credit-memorizing"
    hidden: int = 256
    training_records: int = 200  # per region

    def partition(self, regions: Sequence[str], seed: int, alpha: float) -> dict[str, Shard]:
        return {
            region: Shard(s.x_train[: self.training_records], s.y_train[: self.training_records], s.x_test, s.y_test)
            for region, s in super().partition(regions, seed, alpha).items()
        }


TASK = MemorizingCredit()
