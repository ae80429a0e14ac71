"""Meridian's round rules around the configured Flower strategy; Flower's `Strategy.start` runs
the rounds.

`configure_train` waits (at most `node-wait-timeout`) until `min-regions` nodes are connected
and lets the configured strategy address exactly those. `aggregate_train` decodes each reply
(compression), validates it (validation.py) and hands the accepted ones to the configured
strategy. A round aggregates only if at least `min-regions` updates were accepted; otherwise
the global model stays as it was and the record says why. Nodes that die, time out, fail or
send what our ClientApp never would are recorded and simply miss the round; they rejoin
whenever they are back.

A train reply also reports how the model it received (the previous round's global model) does
on the region's test split, so a round's record is written once the next round's replies have
measured its model. Evaluate messages therefore go out only after the last round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.supercore.differential_privacy import KEY_NORM_BIT
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from workloads.contract import Downlink
from workloads.trainer.compression import (
    COMPRESSION_RECORD_KEY,
    MalformedUpdate,
    Tensors,
    TopkCodec,
    decode,
    to_numpy,
    to_record,
)
from workloads.trainer.downlink import DOWNLINK_RECORD_KEY, DownlinkMirror
from workloads.trainer.grids import DelegatingGrid, PromptGrid
from workloads.trainer.metrics import FederationMetrics
from workloads.trainer.packing import pack, unpack
from workloads.trainer.privacy import DELTA, EPSILON, EPSILON_NEXT, NOISE_MULTIPLIER, TARGET_EPSILON, within
from workloads.trainer.records import (
    Delivery,
    Evaluation,
    Privacy,
    RegionRound,
    RoundLog,
    RoundRecord,
    Seconds,
    Status,
    Training,
)
from workloads.trainer.round_phases import ServerPhases, TaskTimes, read_task_times
from workloads.trainer.settings import TrainerSettings
from workloads.trainer.strategies import WEIGHT_KEY, RoundSizedMultiKrum
from workloads.trainer.task import record_number
from workloads.trainer.validation import validate_updates

logger = logging.getLogger("flwr").getChild("meridian")


class RegionsUnavailable(RuntimeError):
    """Fewer than min-regions nodes connected within node-wait-timeout: the run stops."""


def wait_for_regions(grid: Grid, minimum: int, timeout: float) -> tuple[list[int], float]:
    """(the connected nodes, seconds waited) once at least `minimum` are connected."""
    started = time.monotonic()
    while len(nodes := sorted(grid.get_node_ids())) < minimum:
        waited = time.monotonic() - started
        if waited > timeout:
            raise RegionsUnavailable(
                f"only {len(nodes)} of the {minimum} regions needed (min-regions) are connected "
                f"after {timeout:g}s (node-wait-timeout)"
            )
        time.sleep(1.0)
    return nodes, time.monotonic() - started


class _NodesWaitedFor(DelegatingGrid):
    """The grid as the configured strategy samples it: exactly the nodes we waited for, so
    Flower's node sampling never blocks on a node that left a moment ago."""

    def __init__(self, grid: Grid, node_ids: list[int]) -> None:
        super().__init__(grid)
        self._node_ids = node_ids

    def get_node_ids(self) -> Iterable[int]:
        return list(self._node_ids)


def _wire_bytes(message: Message) -> int:
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())


@dataclass(frozen=True)
class _SentRound:
    """What configure_train sent, for aggregate_train to account for."""

    messages: list[Message]
    reference: Tensors  # the global model the updates are applied to
    deliveries: dict[int, Delivery]  # by node id: what went down
    started: float
    waited: float
    grid: Grid  # what Flower sends the round through (a grids.PromptGrid times it)


@dataclass
class _Received:
    """A round's train replies, read: every sent message's part of the record (by region), the
    decoded updates and their messages ready to aggregate, and how each region's test split
    rated the model the region received."""

    regions: dict[str, RegionRound] = field(default_factory=dict)
    updates: dict[str, Tensors] = field(default_factory=dict)
    replies: dict[str, Message] = field(default_factory=dict)
    received_model: dict[str, Evaluation] = field(default_factory=dict)


def _read_privacy(metrics: MetricRecord) -> Privacy | None:
    """A private fit's account, if the reply has one."""
    if EPSILON not in metrics:
        return None
    return Privacy(
        epsilon=record_number(metrics, EPSILON),
        epsilon_next=record_number(metrics, EPSILON_NEXT),
        noise_multiplier=record_number(metrics, NOISE_MULTIPLIER),
        target_epsilon=record_number(metrics, TARGET_EPSILON),
        delta=record_number(metrics, DELTA),
    )


def _read_train_reply(reply: Message) -> tuple[str, Training, Evaluation, TaskTimes | None]:
    """(region, its training, how the model it received did on its test split, its timings)."""
    metrics = reply.content.metric_records["metrics"]
    training = Training(
        examples=int(record_number(metrics, "num-examples")),
        train_loss=record_number(metrics, "train-loss"),
        train_seconds=record_number(metrics, "train-seconds"),
        uplink_payload_bytes=reply.content.array_records["arrays"].count_bytes(),
        uplink_wire_bytes=_wire_bytes(reply),
    )
    evaluation = Evaluation(
        loss=record_number(metrics, "received-loss"),
        accuracy=record_number(metrics, "received-accuracy"),
        examples=int(record_number(metrics, "test-examples")),
    )
    return str(reply.content.config_records["node"]["region"]), training, evaluation, read_task_times(metrics)


class GuardedStrategy(Strategy):
    """The strategy Flower runs: `inner` (strategies.py) aggregates what these rules let through."""

    def __init__(
        self, inner: Strategy, settings: TrainerSettings, run_id: int, log: RoundLog, metrics: FederationMetrics
    ) -> None:
        self.inner, self.settings, self.run_id, self.log, self.metrics = inner, settings, run_id, log, metrics
        self.regions_by_node: dict[int, str] = {}
        self.completed_rounds = 0  # the last round that changed the global model
        self.last_record: RoundRecord | None = None  # written once its model is measured
        self._sent: _SentRound | None = None
        self.records: list[RoundRecord] = []  # every round's record, in order
        self.stopped: str | None = None  # why the run ended before its planned rounds
        self.stopped_after: int | None = None  # the last round it ran
        self.mirror: DownlinkMirror | None = None  # downlink=topk: the model the nodes hold

    def summary(self) -> None:
        s = self.settings
        logger.info(
            "Meridian: %s wrapped in update validation (norm z <= %g), %s uplink, min-regions %d",
            type(self.inner).__name__,
            s.norm_z_max,
            s.compression.value,
            s.min_regions,
        )
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.stopped is not None:  # Flower's loop runs on; nothing more is sent
            self._sent = None
            return []
        node_ids, waited = wait_for_regions(grid, self.settings.min_regions, self.settings.node_wait_timeout)
        started = time.monotonic()
        messages = list(self.inner.configure_train(server_round, arrays, config, _NodesWaitedFor(grid, node_ids)))
        deliveries = self._send_down(messages, arrays)
        self._sent = _SentRound(messages, to_numpy(arrays), deliveries, started, waited, grid)
        return messages

    def _send_down(self, messages: list[Message], arrays: ArrayRecord) -> dict[int, Delivery]:
        """With downlink=topk, replace each message's global model with what its node needs to
        rebuild the mirror (downlink.py); then every model goes packed into one array
        (packing.py). What each node is sent, by node id."""
        if self.settings.downlink is Downlink.TOPK and messages:
            if self.mirror is None:  # the first round's model is the initial one, which nodes build themselves
                self.mirror = DownlinkMirror(to_numpy(arrays), TopkCodec.downlink(self.settings))
            self.mirror.advance(to_numpy(arrays))
            for message in messages:
                down, record = self.mirror.content(message.metadata.dst_node_id)
                message.content = RecordDict({**message.content, "arrays": down, DOWNLINK_RECORD_KEY: record})
        for message in messages:
            pack(message.content)
        return {
            m.metadata.dst_node_id: Delivery(
                m.metadata.dst_node_id,
                m.content.array_records["arrays"].count_bytes(),
                _wire_bytes(m),
                str(m.content.config_records[DOWNLINK_RECORD_KEY]["mode"]) if self.mirror is not None else "full",
            )
            for m in messages
        }

    def _acknowledge(self, node_id: int, reply: Message | None) -> None:
        if self.mirror is not None:
            self.mirror.acknowledge(node_id, reply is not None and not reply.has_error())

    def published_model(self, final: ArrayRecord) -> ArrayRecord:
        """The model to save: with downlink=topk, the one the nodes hold (its accuracy is the
        one measured), else the global model."""
        return to_record(self.mirror.model) if self.mirror is not None else final

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        sent, s = self._sent, self.settings
        if self.stopped is not None:
            return None, None
        assert sent is not None, "configure_train comes first"
        aggregating = time.monotonic()
        received = self._receive(sent, replies)
        regions = received.regions
        accepted, rejections = validate_updates(received.updates, sent.reference, s.norm_z_max)
        for rejection in rejections:
            regions[rejection.source].status = Status.REJECTED
            regions[rejection.source].reason = rejection.reason
        enough = len(accepted) >= s.min_regions
        for region in accepted:
            regions[region].status = Status.AGGREGATED if enough else Status.NOT_AGGREGATED
        for region, part in regions.items():
            if part.reason:
                logger.warning(
                    "Meridian round %d: %s update from %s: %s", server_round, part.status, region, part.reason
                )

        arrays, skipped = None, None
        if enough:
            if isinstance(self.inner, RoundSizedMultiKrum):
                self.inner.rejected_this_round = sum(p.status is Status.REJECTED for p in regions.values())
            aggregated, _ = self.inner.aggregate_train(server_round, [received.replies[r] for r in accepted])
            if aggregated is not None:
                # Some strategies (FedAdam) compute in float64; the model stays in its own dtypes.
                ref = sent.reference
                arrays = to_record({k: v.astype(ref[k].dtype) for k, v in to_numpy(aggregated).items()})
                self.completed_rounds = server_round
        else:
            skipped = f"{len(accepted)} accepted updates, min-regions is {s.min_regions}: global model unchanged"
            logger.warning("Meridian round %d skipped: %s", server_round, skipped)
        done = time.monotonic()
        training = max((p.training.train_seconds for p in regions.values() if p.training), default=0.0)
        timed = [p.task for p in regions.values() if p.task is not None]
        exchange = sent.grid.last if isinstance(sent.grid, PromptGrid) else None
        phases = None
        if exchange is not None:
            waiting = max(exchange.reply_seconds.values(), default=aggregating - sent.started)
            phases = ServerPhases(
                push=exchange.push_seconds, waiting_for_replies=waiting, aggregation=done - aggregating
            )
        record = RoundRecord(
            round=server_round,
            run_id=self.run_id,
            strategy=s.strategy.value,
            compression=s.compression.value,
            downlink=s.downlink.value,
            skipped=skipped,
            seconds=Seconds(
                round=done - sent.started,
                training=training,
                waiting_for_regions=sent.waited,
                local=max(t.local for t in timed) if timed else None,
                phases=phases,
            ),
            regions=regions,
        )
        self._record_previous(received.received_model)
        self.last_record = record
        self.records.append(record)
        self._stop_before_overspending(server_round, record)
        return arrays, None

    def _stop_before_overspending(self, server_round: int, record: RoundRecord) -> None:
        """End the run after this round if any region's next fit would exceed its ε."""
        if server_round >= self.settings.rounds:
            return
        over = {
            region: part.privacy
            for region, part in record.regions.items()
            if part.privacy is not None and not within(part.privacy.epsilon_next, part.privacy.target_epsilon)
        }
        if not over:
            return
        self.stopped = (
            "privacy budget: "
            + "; ".join(
                f"{region} has spent ε={p.epsilon:.3f} and its next fit would reach ε={p.epsilon_next:.3f} "
                f"> {p.target_epsilon:g} (δ={p.delta:g})"
                for region, p in sorted(over.items())
            )
            + f"; the run stops after round {server_round} of {self.settings.rounds}"
        )
        self.stopped_after = server_round
        record.stopped = self.stopped
        logger.warning("Meridian: %s", self.stopped)

    def _region(self, node_id: int) -> str:
        return self.regions_by_node.get(node_id, f"node-{node_id}")

    def _receive(self, sent: _SentRound, replies: Iterable[Message]) -> _Received:
        by_node = {reply.metadata.src_node_id: reply for reply in replies}
        received = _Received()
        for message in sent.messages:
            node_id = message.metadata.dst_node_id
            part = RegionRound(Status.FAILED, sent.deliveries[node_id])
            region, reply, training, evaluation, task = self._region(node_id), by_node.get(node_id), None, None, None
            self._acknowledge(node_id, reply)
            if reply is None:
                part.reason = f"no reply within round-timeout ({self.settings.round_timeout:g}s)"
            elif reply.has_error():
                part.reason = f"node error: {reply.error.reason}"
            else:
                try:
                    region, training, evaluation, task = _read_train_reply(reply)
                except (KeyError, TypeError, ValueError) as err:  # not what our ClientApp sends
                    part.status, part.reason = Status.REJECTED, f"malformed reply: missing or bad {err}"
            if region in received.regions:  # two nodes under one name: keep both, tell them apart
                region = f"{region}#{node_id}"
            received.regions[region] = part
            if reply is None or training is None or evaluation is None:
                continue
            part.training = training
            part.privacy = _read_privacy(reply.content.metric_records["metrics"])
            part.task = task
            if isinstance(sent.grid, PromptGrid) and sent.grid.last is not None:
                part.reply_wait = sent.grid.last.reply_seconds.get(node_id)
            self.regions_by_node[node_id] = region
            received.received_model[region] = evaluation
            try:
                received.updates[region] = update = self._decode(reply, sent.reference)
            except MalformedUpdate as err:
                part.status, part.reason = Status.REJECTED, str(err)
                continue
            # What the configured strategy aggregates: full weights, weighted by training examples
            # (and, with client-side adaptive clipping, whether the region clipped its update).
            metrics = MetricRecord({WEIGHT_KEY: training.examples})
            if KEY_NORM_BIT in (sent_metrics := reply.content.metric_records["metrics"]):
                metrics[KEY_NORM_BIT] = sent_metrics[KEY_NORM_BIT]
            reply.content = RecordDict({"arrays": to_record(update), "metrics": metrics})
            received.replies[region] = reply
        return received

    def _decode(self, reply: Message, reference: Tensors) -> Tensors:
        unpack(reply.content)
        expected = self.settings.compression
        declared = reply.content.config_records.get(COMPRESSION_RECORD_KEY)
        if declared is None or declared.get("mode") != expected.value:
            found = declared.get("mode") if declared is not None else "no compression record"
            raise MalformedUpdate(f"update encoded as {found!r}, this run uses {expected.value!r}")
        return decode(
            to_numpy(reply.content.array_records["arrays"]), reference, expected, TopkCodec.uplink(self.settings)
        )

    def _record_previous(self, evaluation: dict[str, Evaluation]) -> None:
        """Write the last round's record, now that `evaluation` measured its model."""
        if self.last_record is not None:
            self.last_record.evaluate(evaluation)
            self.log.write(self.last_record)
            self.metrics.observe_round(self.last_record)

    def _is_last(self, server_round: int) -> bool:
        return server_round == (self.stopped_after or self.settings.rounds)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self._is_last(server_round):
            return []  # the next round's train replies measure this model
        node_ids, _ = wait_for_regions(grid, 1, self.settings.node_wait_timeout)
        messages = list(self.inner.configure_evaluate(server_round, arrays, config, _NodesWaitedFor(grid, node_ids)))
        self._send_down(messages, arrays)
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        if not self._is_last(server_round):
            return None
        results: dict[str, Evaluation] = {}
        for reply in replies:
            self._acknowledge(reply.metadata.src_node_id, reply)
            if reply.has_error():
                region = self._region(reply.metadata.src_node_id)
                logger.warning("Meridian final evaluation: %s failed: %s", region, reply.error.reason)
                continue
            metrics = reply.content.metric_records["metrics"]
            results[str(reply.content.config_records["node"]["region"])] = Evaluation(
                loss=record_number(metrics, "loss"),
                accuracy=record_number(metrics, "accuracy"),
                examples=int(record_number(metrics, "num-examples")),
            )
        self._record_previous(results)
        return None
