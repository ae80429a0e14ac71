"""The aggregation strategy named in the run config, built from Flower's own strategies.

GuardedStrategy (guarded_strategy.py) enforces the minimum number of regions and the timeouts,
so these strategies are built to accept whatever arrives (their own minimums are 1) and never to
wait for nodes. Weighted by training examples where the method allows: FedAvg, FedProx,
FedAdam and the average of MultiKrum's selection are; the median and the trimmed mean are
order statistics and are not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp import strategy as flwr_strategy

from workloads.trainer.settings import Strategy, TrainerSettings

WEIGHT_KEY = "num-examples"


class RoundSizedMultiKrum(flwr_strategy.MultiKrum):
    """MultiKrum sized to each round: of the n updates that passed validation it keeps
    n - f', where f' is the configured number of malicious regions minus those validation
    already rejected this round. Flower's MultiKrum keeps a fixed number, which is wrong once
    a region drops out, and would throw away an honest update for an attacker that
    validation has already removed."""

    def __init__(self, *, num_malicious_nodes: int, **kwargs: Any) -> None:
        super().__init__(num_malicious_nodes=num_malicious_nodes, **kwargs)
        self.assumed_malicious = num_malicious_nodes
        self.rejected_this_round = 0

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        self.num_malicious_nodes = max(0, self.assumed_malicious - self.rejected_this_round)
        self.num_nodes_to_select = max(1, len(replies) - self.num_malicious_nodes)
        return super().aggregate_train(server_round, replies)


def build_strategy(settings: TrainerSettings) -> flwr_strategy.Strategy:
    """The configured strategy, inside Flower's update-level DP wrapper when
    `aggregate-clipping` is set."""
    base = _base_strategy(settings)
    if settings.aggregate_clipping == "none":
        return base
    # The noise's standard deviation is sigma * C / num_sampled_clients: min-regions, the fewest a
    # round aggregates, so a round with more regions gets more noise than it needs, never less.
    sampled = settings.min_regions
    server = settings.aggregate_side == "server"
    if settings.aggregate_clipping == "fixed":
        fixed = (
            flwr_strategy.DifferentialPrivacyServerSideFixedClipping
            if server
            else flwr_strategy.DifferentialPrivacyClientSideFixedClipping
        )
        return fixed(base, settings.aggregate_noise_multiplier, settings.aggregate_clipping_norm, sampled)
    adaptive = (
        flwr_strategy.DifferentialPrivacyServerSideAdaptiveClipping
        if server
        else flwr_strategy.DifferentialPrivacyClientSideAdaptiveClipping
    )
    return adaptive(
        base,
        settings.aggregate_noise_multiplier,
        sampled,
        initial_clipping_norm=settings.aggregate_clipping_norm,
        target_clipped_quantile=settings.aggregate_target_quantile,
    )


def _base_strategy(settings: TrainerSettings) -> flwr_strategy.FedAvg:
    common = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": 1,
        "min_evaluate_nodes": 1,
        "min_available_nodes": 1,
        "weighted_by_key": WEIGHT_KEY,
    }
    match settings.strategy:
        case Strategy.FEDAVG:
            return flwr_strategy.FedAvg(**common)
        case Strategy.FEDPROX:
            return flwr_strategy.FedProx(**common, proximal_mu=settings.proximal_mu)
        case Strategy.FEDADAM:
            return flwr_strategy.FedAdam(**common, eta=settings.server_learning_rate)
        case Strategy.FEDMEDIAN:
            return flwr_strategy.FedMedian(**common)
        case Strategy.FEDTRIMMEDAVG:
            return flwr_strategy.FedTrimmedAvg(**common, beta=settings.trim_fraction)
        case Strategy.MULTIKRUM:
            return RoundSizedMultiKrum(**common, num_malicious_nodes=settings.krum_malicious)
