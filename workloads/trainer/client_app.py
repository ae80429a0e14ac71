"""What a SuperNode runs for each message (in a fresh process): train the received global
model on the region's own data, or evaluate it there.

A train reply also carries the received model's loss and accuracy on the region's test split,
measured before training: the server learns how the previous round's global model does in
every region without a separate evaluation round-trip (each one costs a process start per
node). Mods, outermost first: `time_task` adds the task's timings (round_phases.py),
`record_training` notes the fit for the node's metrics, `expand_downlink` rebuilds the global
model from a compressed downlink (downlink.py), `compress_uplink` encodes the update against it,
`inject_fault` (drills only) corrupts it before that.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable

from workloads import contract
from workloads.tasks import Shard, TrainResult, load_task
from workloads.tasks import evaluate as evaluate_model
from workloads.tasks import train as train_model
from workloads.trainer.compression import compress_uplink
from workloads.trainer.downlink import expand_downlink
from workloads.trainer.faults import inject_fault
from workloads.trainer.packing import packed_transport
from workloads.trainer.privacy import EPSILON, RegionAccount, check_budget, reply_metrics
from workloads.trainer.round_phases import EVALUATE_SECONDS, TRAIN_SECONDS, time_task
from workloads.trainer.settings import TrainerSettings
from workloads.trainer.task import get_weights, node_region, node_shard, record_number, set_weights
from workloads.trainer.training_log import TrainingRecord, append

log = logging.getLogger(__name__)


def record_training(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod, outermost but for timing: after a local fit, append its record to the file
    named by $MERIDIAN_TRAINING_RECORDS (contract.ENV_TRAINING_RECORDS), which the node's
    metrics exporter serves. Outermost, because only here is the update as it is sent (encoded
    and packed; in drills, also corrupted), so its size is the one the server records."""
    reply = call_next(msg, context)
    path = os.environ.get(contract.ENV_TRAINING_RECORDS)
    if not path or msg.metadata.message_type != MessageType.TRAIN or reply.has_error():
        return reply
    metrics = reply.content.metric_records["metrics"]
    record = TrainingRecord(
        time=time.time(),
        run_id=context.run_id,
        round=int(record_number(msg.content.config_records["config"], "server-round")),
        region=node_region(context),
        loss=record_number(metrics, "train-loss"),
        examples=int(record_number(metrics, "num-examples")),
        fit_seconds=record_number(metrics, "train-seconds"),
        uplink_bytes=reply.content.array_records["arrays"].count_bytes(),
        epsilon=record_number(metrics, EPSILON) if EPSILON in metrics else None,
    )
    try:
        append(Path(path), record)
    except OSError as err:  # metrics never fail a fit: the reply still goes out
        log.warning("could not append the training record to %s: %s", path, err)
    return reply


def clip_update(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod, innermost: with update-level DP clipped on the client
    (aggregate-side=client), Flower's own clipping mod for the configured clipping; the
    honest update is clipped before a drill's fault corrupts it and before it is encoded."""
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, context)
    settings = TrainerSettings.from_run_config(context.run_config)
    if settings.aggregate_clipping == "none" or settings.aggregate_side != "client":
        return call_next(msg, context)
    mod = fixedclipping_mod if settings.aggregate_clipping == "fixed" else adaptiveclipping_mod
    return mod(msg, context, call_next)


app = ClientApp(
    mods=[time_task, record_training, packed_transport, expand_downlink, compress_uplink, inject_fault, clip_update]
)


def _received_model(msg: Message, context: Context) -> tuple[torch.nn.Module, TrainerSettings]:
    settings = TrainerSettings.from_run_config(context.run_config)
    model = load_task(settings.task).build_model()
    set_weights(model, msg.content.array_records["arrays"])
    return model, settings


@app.train()
def train(msg: Message, context: Context) -> Message:
    model, settings = _received_model(msg, context)
    shard = node_shard(context)
    config = msg.content.config_records["config"]
    evaluating = time.monotonic()
    before = evaluate_model(model, shard.x_test, shard.y_test)
    evaluate_seconds = time.monotonic() - evaluating
    server_round = int(record_number(config, "server-round"))
    proximal_mu = record_number(config, "proximal-mu") if "proximal-mu" in config else 0.0
    seed = settings.seed * 100_003 + server_round
    privacy = MetricRecord()
    if settings.private:
        result, privacy = _train_private(model, shard, settings, context, proximal_mu, seed)
    else:
        result = train_model(
            model,
            shard.x_train,
            shard.y_train,
            epochs=settings.local_epochs,
            batch_size=settings.batch_size,
            lr=settings.learning_rate,
            proximal_mu=proximal_mu,
            seed=seed,
        )
    metrics = MetricRecord(
        {
            "num-examples": result.examples,
            "train-loss": result.loss,
            TRAIN_SECONDS: result.seconds,
            EVALUATE_SECONDS: evaluate_seconds,
            "received-loss": before.loss,
            "received-accuracy": before.accuracy,
            "test-examples": before.examples,
            **privacy,
        }
    )
    identity = ConfigRecord({"region": node_region(context)})
    return Message(RecordDict({"arrays": get_weights(model), "metrics": metrics, "node": identity}), reply_to=msg)


def _train_private(
    model: torch.nn.Module,
    shard: Shard,
    settings: TrainerSettings,
    context: Context,
    proximal_mu: float,
    seed: int,
) -> tuple[TrainResult, MetricRecord]:
    """DP-SGD within the region's budget; the account carries over in the node's Context."""
    from workloads.tasks.private import train_private

    examples = len(shard.x_train)
    account = RegionAccount.load(context, settings, examples)
    check_budget(account, settings, examples)  # BudgetExhausted: the reply is an error, nothing trained
    result = train_private(
        model,
        shard.x_train,
        shard.y_train,
        epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        lr=settings.learning_rate,
        noise_multiplier=account.noise_multiplier,
        max_grad_norm=settings.dp_max_grad_norm,
        history=account.history,
        proximal_mu=proximal_mu,
        seed=seed,
    )
    account.history = result.history
    account.save(context)
    return result, reply_metrics(account, settings, examples)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    model, _ = _received_model(msg, context)
    shard = node_shard(context)
    result = evaluate_model(model, shard.x_test, shard.y_test)
    metrics = MetricRecord({"num-examples": result.examples, "loss": result.loss, "accuracy": result.accuracy})
    identity = ConfigRecord({"region": node_region(context)})
    return Message(RecordDict({"metrics": metrics, "node": identity}), reply_to=msg)
