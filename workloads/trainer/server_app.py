"""What the SuperLink runs for a federated training run (the ServerApp).

Per round: wait (bounded) until `min-regions` nodes are connected; send every connected node
the global model; collect replies until `round-timeout`; decode each update (compression),
validate it (validation.py), and hand the accepted ones to the configured Flower strategy.
A round aggregates only if at least `min-regions` updates were accepted; otherwise the
global model stays as it was and the record says why. Nodes that die, time out or fail are
recorded and simply miss the round; they rejoin whenever they are back.

A train reply also reports how the model it received (the previous round's global model)
does on the region's test split, so each round's record is written once the next round's
replies (or, after the last round, a final evaluation) have measured its model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from workloads.tasks import Task, load_task
from workloads.trainer.compression import (
    COMPRESSION_RECORD_KEY,
    MalformedUpdate,
    Tensors,
    decode,
    to_numpy,
    to_record,
)
from workloads.trainer.metrics import FederationMetrics
from workloads.trainer.records import RoundLog, attach_evaluation, save_model
from workloads.trainer.settings import TrainerSettings
from workloads.trainer.strategies import WEIGHT_KEY, RoundSizedMultiKrum, build_strategy
from workloads.trainer.task import record_number
from workloads.trainer.validation import validate_updates

logger = logging.getLogger("flwr").getChild("meridian")

app = ServerApp()


class RegionsUnavailable(RuntimeError):
    """Fewer than min-regions nodes connected within node-wait-timeout: the run stops."""


class _FixedNodes:
    """The grid as strategies see it during one round: exactly the nodes we waited for, so
    Flower's node sampling never blocks on a node that left a moment ago."""

    def __init__(self, grid: Grid, node_ids: list[int]) -> None:
        self._grid, self._node_ids = grid, node_ids

    def get_node_ids(self) -> Iterable[int]:
        return list(self._node_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def _wire_bytes(message: Message) -> int:
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())


def wait_for_regions(grid: Grid, minimum: int, timeout: float) -> tuple[list[int], float]:
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


class FederatedRun:
    def __init__(self, grid: Grid, settings: TrainerSettings, run_id: int) -> None:
        self.grid, self.settings, self.run_id = grid, settings, run_id
        self.task: Task = load_task(settings.task)
        torch.manual_seed(settings.seed)
        self.model = self.task.build_model()
        self.arrays = ArrayRecord({k: v.detach() for k, v in self.model.state_dict().items()})
        self.strategy = build_strategy(settings)
        self.regions_by_node: dict[int, str] = {}
        self.log = RoundLog(settings.out_path)
        self.metrics = FederationMetrics()
        self.completed_rounds = 0

    def _region(self, node_id: int) -> str:
        return self.regions_by_node.get(node_id, f"node-{node_id}")

    def execute(self) -> dict[str, Any]:
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        pending: dict[str, Any] | None = None
        for server_round in range(1, self.settings.rounds + 1):
            record, received_model_metrics = self._train_round(server_round)
            if pending is not None:
                self._finish(pending, received_model_metrics)
            pending = record
        assert pending is not None
        final = self._final_evaluation()
        self._finish(pending, final)
        info = {
            "task": self.task.name,
            "task_reference": self.settings.task,
            "round": self.completed_rounds,
            "rounds": self.settings.rounds,
            "run_id": self.run_id,
            "strategy": self.settings.strategy.value,
            "compression": self.settings.compression.value,
            "metrics": pending["global"],
            "region_metrics": {r: {k: p.get(k) for k in ("loss", "accuracy")} for r, p in pending["regions"].items()},
        }
        info = save_model(self.settings.out_path, self.arrays.to_torch_state_dict(), info)
        logger.info("Meridian: final global accuracy %s, model in %s", pending["global"]["accuracy"], self.settings.out_path)
        return info

    def _finish(self, record: dict[str, Any], evaluation: dict[str, dict[str, float]]) -> None:
        attach_evaluation(record, evaluation)
        self.log.write(record)
        self.metrics.observe_round(record)

    def _train_round(self, server_round: int) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
        s = self.settings
        node_ids, waited = wait_for_regions(self.grid, s.min_regions, s.node_wait_timeout)
        started = time.monotonic()
        reference = to_numpy(self.arrays)
        messages = list(
            self.strategy.configure_train(server_round, self.arrays, ConfigRecord(), _FixedNodes(self.grid, node_ids))  # type: ignore[arg-type]
        )
        downlink_payload = self.arrays.count_bytes()
        downlink_wire = _wire_bytes(messages[0]) if messages else 0
        replies = {r.metadata.src_node_id: r for r in self.grid.send_and_receive(messages, timeout=s.round_timeout)}

        regions: dict[str, dict[str, Any]] = {}
        updates: dict[str, Tensors] = {}
        reply_by_region: dict[str, Message] = {}
        received_model: dict[str, dict[str, float]] = {}
        for message in messages:
            node_id = message.metadata.dst_node_id
            reply = replies.get(node_id)
            part: dict[str, Any] = {
                "node_id": node_id,
                "downlink_payload_bytes": downlink_payload,
                "downlink_wire_bytes": downlink_wire,
                "status": "failed",
                "reason": None,
            }
            if reply is None:
                region = self._region(node_id)
                part["reason"] = f"no reply within round-timeout ({s.round_timeout:g}s)"
            elif reply.has_error():
                region = self._region(node_id)
                part["reason"] = f"node error: {reply.error.reason}"
            else:
                try:
                    region, fields, evaluation = self._read_train_reply(reply)
                except (KeyError, TypeError, ValueError) as err:  # not what our ClientApp sends
                    region = self._region(node_id)
                    part.update(status="rejected", reason=f"malformed reply: missing or bad {err}")
                else:
                    if region in regions:  # two nodes claiming one region: keep both, tell them apart
                        region = f"{region}#{node_id}"
                    self.regions_by_node[node_id] = region
                    part.update(fields)
                    received_model[region] = evaluation
                    try:
                        updates[region] = self._decode(reply, reference)
                        reply_by_region[region] = reply
                    except MalformedUpdate as err:
                        part.update(status="rejected", reason=str(err))
            regions[region] = part

        accepted, rejections = validate_updates(updates, reference, s.norm_z_max)
        for rejection in rejections:
            regions[rejection.source].update(status="rejected", reason=rejection.reason)
        enough = len(accepted) >= s.min_regions
        for region in accepted:
            regions[region]["status"] = "aggregated" if enough else "not aggregated"
        for region, part in regions.items():
            if part["reason"]:
                logger.warning("Meridian round %d: %s update from %s: %s", server_round, part["status"], region, part["reason"])

        skipped = None
        if enough:
            to_aggregate = []
            for region in accepted:
                reply = reply_by_region[region]
                reply.content = RecordDict(
                    {
                        "arrays": to_record(updates[region]),
                        "metrics": MetricRecord({WEIGHT_KEY: regions[region]["examples"]}),
                    }
                )
                to_aggregate.append(reply)
            if isinstance(self.strategy, RoundSizedMultiKrum):
                self.strategy.rejected_this_round = sum(p["status"] == "rejected" for p in regions.values())
            aggregated, _ = self.strategy.aggregate_train(server_round, to_aggregate)
            if aggregated is not None:
                # Some strategies (FedAdam) compute in float64; the model stays in its own dtypes.
                self.arrays = to_record({k: v.astype(reference[k].dtype) for k, v in to_numpy(aggregated).items()})
                self.completed_rounds = server_round
        else:
            skipped = f"{len(accepted)} accepted updates, min-regions is {s.min_regions}: global model unchanged"
            logger.warning("Meridian round %d skipped: %s", server_round, skipped)
        finished = time.monotonic()

        training = max((p.get("train_seconds", 0.0) for p in regions.values()), default=0.0)
        record: dict[str, Any] = {
            "round": server_round,
            "run_id": self.run_id,
            "strategy": s.strategy.value,
            "compression": s.compression.value,
            "aggregated": sorted(r for r, p in regions.items() if p["status"] == "aggregated"),
            "rejected": sorted(r for r, p in regions.items() if p["status"] == "rejected"),
            "failed": sorted(r for r, p in regions.items() if p["status"] == "failed"),
            "skipped": skipped,
            "regions": regions,
            "uplink_payload_bytes": sum(p.get("uplink_payload_bytes", 0) for p in regions.values()),
            "uplink_wire_bytes": sum(p.get("uplink_wire_bytes", 0) for p in regions.values()),
            "downlink_payload_bytes": downlink_payload * len(messages),
            "downlink_wire_bytes": downlink_wire * len(messages),
            "seconds": {
                "round": finished - started,
                "training": training,
                "overhead": finished - started - training,
                "waiting_for_regions": waited,
            },
        }
        return record, received_model

    @staticmethod
    def _read_train_reply(reply: Message) -> tuple[str, dict[str, Any], dict[str, float]]:
        """(region, record fields, how the received model did on the region's test split)."""
        metrics = reply.content.metric_records["metrics"]
        fields = {
            "examples": int(record_number(metrics, "num-examples")),
            "train_loss": record_number(metrics, "train-loss"),
            "train_seconds": record_number(metrics, "train-seconds"),
            "uplink_payload_bytes": reply.content.array_records["arrays"].count_bytes(),
            "uplink_wire_bytes": _wire_bytes(reply),
        }
        evaluation = {
            "loss": record_number(metrics, "received-loss"),
            "accuracy": record_number(metrics, "received-accuracy"),
            "examples": int(record_number(metrics, "test-examples")),
        }
        return str(reply.content.config_records["node"]["region"]), fields, evaluation

    def _decode(self, reply: Message, reference: Tensors) -> Tensors:
        expected = self.settings.compression
        declared = reply.content.config_records.get(COMPRESSION_RECORD_KEY)
        if declared is None or declared.get("mode") != expected.value:
            found = declared.get("mode") if declared is not None else "no compression record"
            raise MalformedUpdate(f"update encoded as {found!r}, this run uses {expected.value!r}")
        return decode(to_numpy(reply.content.array_records["arrays"]), reference, expected)

    def _final_evaluation(self) -> dict[str, dict[str, float]]:
        s = self.settings
        node_ids, _ = wait_for_regions(self.grid, 1, s.node_wait_timeout)
        messages = list(
            self.strategy.configure_evaluate(s.rounds, self.arrays, ConfigRecord(), _FixedNodes(self.grid, node_ids))  # type: ignore[arg-type]
        )
        results: dict[str, dict[str, float]] = {}
        for reply in self.grid.send_and_receive(messages, timeout=s.round_timeout):
            if reply.has_error():
                logger.warning("Meridian final evaluation: %s failed: %s", self._region(reply.metadata.src_node_id), reply.error.reason)
                continue
            metrics = reply.content.metric_records["metrics"]
            region = str(reply.content.config_records["node"]["region"])
            results[region] = {
                "loss": record_number(metrics, "loss"),
                "accuracy": record_number(metrics, "accuracy"),
                "examples": int(record_number(metrics, "num-examples")),
            }
        return results


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = TrainerSettings.from_run_config(context.run_config)
    FederatedRun(grid, settings, context.run_id).execute()
