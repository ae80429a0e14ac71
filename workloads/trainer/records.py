"""What a run leaves behind: one JSON line per round, and the final global model.

`<out-dir>/rounds.jsonl`, one object per round:
    round, strategy, compression
    aggregated / rejected / failed: region lists; `regions.<r>.reason` says why
    regions.<r>: status, node_id, reason, examples, train_loss, train_seconds,
                 uplink/downlink payload bytes (the arrays as serialized) and wire bytes (the
                 whole message as pushed over the Fleet API, before HTTP/TLS framing),
                 loss/accuracy of this round's global model on the region's test split
    global: loss, accuracy, examples, evaluated_regions (the model after this round,
            evaluated on every reachable region's test split; weighted by test examples)
    uplink_payload_bytes, uplink_wire_bytes, downlink_payload_bytes, downlink_wire_bytes
    seconds: round (send to aggregated), training (slowest region's local training),
             overhead (round - training: process start, transfer, encode/decode, aggregation),
             waiting_for_regions (before the round, until min-regions were connected)
`<out-dir>/model.safetensors` + `<out-dir>/model.json` (task, round, metrics, sha256): the
final global model, for localization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

ROUNDS_FILE = "rounds.jsonl"
MODEL_FILE = "model.safetensors"
MODEL_INFO_FILE = "model.json"


def global_evaluation(per_region: dict[str, dict[str, float]]) -> dict[str, Any]:
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


def attach_evaluation(record: dict[str, Any], per_region: dict[str, dict[str, float]]) -> None:
    for region, m in per_region.items():
        part = record["regions"].setdefault(region, {"status": "evaluated only"})
        part.update(loss=m["loss"], accuracy=m["accuracy"], test_examples=m["examples"])
    record["global"] = global_evaluation(per_region)


class RoundLog:
    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / ROUNDS_FILE
        self.path.write_text("")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


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
