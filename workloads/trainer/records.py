"""What a run leaves behind: one JSON line per round, and the final global model.

`<out-dir>/rounds.jsonl`, one object per round (a RoundRecord, written by RoundLog; readers
such as the local stack's report and the benchmark take the JSON as it is):
    round, run_id, strategy, compression, downlink (full | topk)
    skipped: why the round left the global model unchanged, or null
    epsilon: {region: ε spent so far in the run} under DP-SGD (dp-epsilon > 0), else null;
             regions.<r>.dp: epsilon, epsilon_next (after one more such fit), noise_multiplier,
             target_epsilon, delta
    stopped: why the run ended after this round, before its planned rounds (a region's next
             fit would exceed its privacy budget), or null
    aggregated / rejected / failed: region lists; `regions.<r>.reason` says why
    regions.<r>: status, node_id, reason, examples, train_loss, train_seconds,
                 uplink/downlink payload bytes (the arrays as serialized) and wire bytes (the
                 whole message as pushed over the Fleet API, before HTTP/TLS framing), and
                 `downlink`: what the node was sent (full: the model; delta: downlink.py),
                 loss/accuracy of this round's global model on the region's test split
    global: loss, accuracy, examples, evaluated_regions (the model after this round,
            evaluated on every reachable region's test split; weighted by test examples)
    uplink_payload_bytes, uplink_wire_bytes, downlink_payload_bytes, downlink_wire_bytes
             clientapp (where the node reported it, round_phases.py): pid, parent_pid, and
                 setup/evaluate/train/task seconds measured on the node, reply_wait seconds
                 on the server (push done until its reply was pulled), transport = reply_wait
                 - task (polls, message transfer, handing the message to a ClientApp process)
    seconds: round (send to aggregated), training (slowest region's local training),
             local (slowest region's evaluation of the received model + training),
             overhead (round - local: polls, process start, transfer, encode/decode, aggregation),
             waiting_for_regions (before the round, until min-regions were connected),
             phases (the server's side, or null): push, waiting_for_replies, aggregation
`<out-dir>/model.safetensors` + `<out-dir>/model.json` (task, round, metrics, sha256): the
final global model, for localization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

import torch
from safetensors.torch import save_file

from workloads.trainer.round_phases import ServerPhases, TaskTimes

ROUNDS_FILE = "rounds.jsonl"
MODEL_FILE = "model.safetensors"
MODEL_INFO_FILE = "model.json"


class Status(StrEnum):
    """What became of a region's part in a round."""

    AGGREGATED = "aggregated"
    NOT_AGGREGATED = "not aggregated"  # accepted, but fewer than min-regions were
    REJECTED = "rejected"
    FAILED = "failed"
    EVALUATED_ONLY = "evaluated only"  # not sent this round; its test split measured the model


class Evaluation(TypedDict):
    """How a model did on one region's test split."""

    loss: float
    accuracy: float
    examples: int


class GlobalEvaluation(TypedDict):
    loss: float | None
    accuracy: float | None
    examples: int
    evaluated_regions: list[str]


def global_evaluation(per_region: Mapping[str, Evaluation]) -> GlobalEvaluation:
    """Test-example-weighted loss and accuracy over the regions that reported one."""
    total = sum(m["examples"] for m in per_region.values())
    if not total:
        return {"loss": None, "accuracy": None, "examples": 0, "evaluated_regions": []}
    return {
        "loss": sum(m["loss"] * m["examples"] for m in per_region.values()) / total,
        "accuracy": sum(m["accuracy"] * m["examples"] for m in per_region.values()) / total,
        "examples": total,
        "evaluated_regions": sorted(per_region),
    }


@dataclass(frozen=True)
class Delivery:
    """The global model as sent to one node."""

    node_id: int
    downlink_payload_bytes: int
    downlink_wire_bytes: int
    downlink: str = "full"  # full: the model; delta: the top-k delta to the model the node holds (downlink.py)


@dataclass(frozen=True)
class Training:
    """What a node's train reply said about its local training and the update it sent."""

    examples: int
    train_loss: float
    train_seconds: float
    uplink_payload_bytes: int
    uplink_wire_bytes: int


@dataclass(frozen=True)
class Privacy:
    """A private fit's account (DP-SGD, workloads/trainer/privacy.py), as the region reported it."""

    epsilon: float  # spent by the region in this run, this fit included
    epsilon_next: float  # what one more fit like this one would take it to
    noise_multiplier: float
    target_epsilon: float
    delta: float


@dataclass
class RegionRound:
    status: Status
    delivery: Delivery | None = None  # None: nothing was sent to the region this round
    reason: str | None = None
    training: Training | None = None
    evaluation: Evaluation | None = None
    privacy: Privacy | None = None
    task: TaskTimes | None = None  # the node's timings of its train task
    reply_wait: float | None = None  # server side: push done until this region's reply was pulled

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value}
        if self.delivery is not None:
            out |= asdict(self.delivery) | {"reason": self.reason}
        if self.training is not None:
            out |= asdict(self.training)
        if self.evaluation is not None:
            e = self.evaluation
            out |= {"loss": e["loss"], "accuracy": e["accuracy"], "test_examples": e["examples"]}
        if self.privacy is not None:
            out["dp"] = asdict(self.privacy)
        if self.task is not None:
            out["clientapp"] = self.task.to_json(self.reply_wait)
        return out


@dataclass(frozen=True)
class Seconds:
    round: float
    training: float
    waiting_for_regions: float
    # The slowest region's evaluation of the received model + training; None where no reply
    # carried its timings (then overhead counts only training as the regions' own work).
    local: float | None = None
    phases: ServerPhases | None = None

    @property
    def overhead(self) -> float:
        """The round's time beyond the regions' own work (issue 13's goal: <= 1.5 s)."""
        return self.round - (self.training if self.local is None else self.local)


@dataclass
class RoundRecord:
    round: int
    run_id: int
    strategy: str
    compression: str
    skipped: str | None
    seconds: Seconds
    regions: dict[str, RegionRound] = field(default_factory=dict)
    evaluation: GlobalEvaluation | None = None  # `global`: set once the round's model was measured
    stopped: str | None = None  # why the run ends after this round, before its planned rounds
    downlink: str = "full"  # the run's downlink setting: full | topk

    def epsilon(self) -> dict[str, float]:
        """ε spent so far by each region that trained privately this round."""
        return {region: part.privacy.epsilon for region, part in self.regions.items() if part.privacy is not None}

    def with_status(self, status: Status) -> list[str]:
        return sorted(region for region, part in self.regions.items() if part.status is status)

    def evaluate(self, per_region: Mapping[str, Evaluation]) -> None:
        """Attach how this round's model did on each region's test split."""
        for region, evaluation in per_region.items():
            self.regions.setdefault(region, RegionRound(Status.EVALUATED_ONLY)).evaluation = evaluation
        self.evaluation = global_evaluation(per_region)

    def region_metrics(self) -> dict[str, dict[str, float | None]]:
        """Each region's loss and accuracy of this round's model (None where not measured)."""
        metrics: dict[str, dict[str, float | None]] = {}
        for region, part in self.regions.items():
            e = part.evaluation
            metrics[region] = {"loss": e["loss"] if e else None, "accuracy": e["accuracy"] if e else None}
        return metrics

    def to_json(self) -> dict[str, Any]:
        parts = self.regions.values()
        delivered = [p.delivery for p in parts if p.delivery is not None]
        trained = [p.training for p in parts if p.training is not None]
        return {
            "round": self.round,
            "run_id": self.run_id,
            "strategy": self.strategy,
            "compression": self.compression,
            "downlink": self.downlink,
            "aggregated": self.with_status(Status.AGGREGATED),
            "rejected": self.with_status(Status.REJECTED),
            "failed": self.with_status(Status.FAILED),
            "skipped": self.skipped,
            "regions": {region: part.to_json() for region, part in self.regions.items()},
            "uplink_payload_bytes": sum(t.uplink_payload_bytes for t in trained),
            "uplink_wire_bytes": sum(t.uplink_wire_bytes for t in trained),
            "downlink_payload_bytes": sum(d.downlink_payload_bytes for d in delivered),
            "downlink_wire_bytes": sum(d.downlink_wire_bytes for d in delivered),
            "seconds": {**asdict(self.seconds), "overhead": self.seconds.overhead},
            "global": self.evaluation,
            "epsilon": self.epsilon() or None,
            "stopped": self.stopped,
        }


class RoundLog:
    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / ROUNDS_FILE
        self.path.write_text("")

    def write(self, record: RoundRecord) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record.to_json(), sort_keys=True) + "\n")


def read_rounds(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / ROUNDS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_model(out_dir: Path, state_dict: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    """Write the weights and a small JSON describing them (returned)."""
    weights = out_dir / MODEL_FILE
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(weights), metadata={"task": info["task"]})
    described = {
        **info,
        "weights": MODEL_FILE,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "parameters": sum(int(v.numel()) for v in state_dict.values()),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out_dir / MODEL_INFO_FILE).write_text(json.dumps(described, indent=2, sort_keys=True) + "\n")
    return described
