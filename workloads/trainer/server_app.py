"""What the SuperLink runs for a federated training run (the ServerApp): the configured Flower
strategy, wrapped in Meridian's round rules (guarded_strategy.py), run by Flower's own
`Strategy.start`; then the final global model is saved and published for localization
(publish.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.superlink.grid import http_grid

from workloads.tasks import load_task
from workloads.trainer.compression import to_record
from workloads.trainer.grids import PromptGrid
from workloads.trainer.guarded_strategy import GuardedStrategy
from workloads.trainer.metrics import FederationMetrics
from workloads.trainer.object_pulls import retry_sooner
from workloads.trainer.publish import publish_global_model
from workloads.trainer.records import RoundLog, save_model
from workloads.trainer.settings import TrainerSettings
from workloads.trainer.strategies import build_strategy
from workloads.trainer.task import initial_weights

logger = logging.getLogger("flwr").getChild("meridian")

app = ServerApp()


def train(grid: Grid, settings: TrainerSettings, run_id: int) -> dict[str, Any]:
    """Run every round, save the final global model and return its description (model.json)."""
    task = load_task(settings.task)
    if settings.private:  # before any round: a model Opacus cannot train fails the run here, naming its layer
        from workloads.tasks.private import check_model

        check_model(task.build_model())
    initial = to_record(initial_weights(settings))
    metrics = FederationMetrics()
    strategy = GuardedStrategy(build_strategy(settings), settings, run_id, RoundLog(settings.out_path), metrics)
    if settings.metrics_port:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    result = strategy.start(grid, initial, num_rounds=settings.rounds, timeout=settings.round_timeout)
    final = strategy.last_record
    assert final is not None and final.evaluation is not None, "start() ran every round"
    info = {
        "task": task.name,
        "task_reference": settings.task,
        "round": strategy.completed_rounds,
        "rounds": settings.rounds,
        "run_id": run_id,
        "strategy": settings.strategy.value,
        "compression": settings.compression.value,
        "metrics": final.evaluation,
        "region_metrics": final.region_metrics(),
        "stopped": strategy.stopped,
        "privacy": _privacy(settings, strategy),
    }
    # Flower's result holds no arrays when no round changed the initial model.
    info = save_model(settings.out_path, strategy.published_model(result.arrays or initial).to_torch_state_dict(), info)
    logger.info("Meridian: final global accuracy %s, model in %s", final.evaluation["accuracy"], settings.out_path)
    return info


def _privacy(settings: TrainerSettings, strategy: GuardedStrategy) -> dict[str, Any] | None:
    """What the final model's privacy guarantee is, for model.json: each region's spent ε."""
    if not settings.private and settings.aggregate_clipping == "none":
        return None
    spent: dict[str, float] = {}
    for record in strategy.records:
        spent |= record.epsilon()
    return {
        "dp_sgd": {
            "epsilon": settings.dp_epsilon,
            "delta": settings.dp_delta,
            "max_grad_norm": settings.dp_max_grad_norm,
        }
        if settings.private
        else None,
        "epsilon_spent": spent or None,
        "aggregate": None
        if settings.aggregate_clipping == "none"
        else {
            "clipping": settings.aggregate_clipping,
            "side": settings.aggregate_side,
            "noise_multiplier": settings.aggregate_noise_multiplier,
            "clipping_norm": settings.aggregate_clipping_norm,
        },
    }


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = TrainerSettings.from_run_config(context.run_config)
    # Replies pulled every reply-poll-interval, not Flower's 3 s, and a reply whose arrays are
    # still arriving retried as often, up to the round timeout (object_pulls.py); the exchange
    # timed (grids.py).
    retry_sooner(http_grid, "pull_objects", settings.reply_poll_interval, give_up_after=settings.round_timeout)
    info = train(PromptGrid(grid, settings.reply_poll_interval), settings, context.run_id)
    publish_global_model(settings.out_path, info, os.environ)
