"""Round records and the saved model: what the JSONL and model files say, as their readers expect."""

import json

import torch
from safetensors.torch import load_file

from workloads.trainer.records import (
    MODEL_FILE,
    Delivery,
    RegionRound,
    RoundLog,
    RoundRecord,
    Seconds,
    Status,
    Training,
    global_evaluation,
    read_rounds,
    save_model,
)
from workloads.trainer.round_phases import ServerPhases, TaskTimes


def test_global_accuracy_weighs_regions_by_their_test_examples():
    result = global_evaluation(
        {"eu": {"loss": 1.0, "accuracy": 0.5, "examples": 100}, "us": {"loss": 3.0, "accuracy": 1.0, "examples": 300}}
    )
    assert result == {"loss": 2.5, "accuracy": 0.875, "examples": 400, "evaluated_regions": ["eu", "us"]}


def test_no_evaluation_is_reported_as_none_not_zero():
    assert global_evaluation({})["accuracy"] is None


def test_the_saved_model_loads_back_and_is_described(tmp_path):
    model = torch.nn.Linear(3, 2)
    info = save_model(tmp_path, model.state_dict(), {"task": "digits", "round": 4})
    assert json.loads((tmp_path / "model.json").read_text()) == info
    loaded = load_file(str(tmp_path / MODEL_FILE))
    assert torch.equal(loaded["weight"], model.weight.detach())
    assert info["task"] == "digits" and info["round"] == 4 and info["parameters"] == 8
    assert len(info["sha256"]) == 64 and info["weights"] == MODEL_FILE


def test_a_round_record_is_written_as_the_json_its_readers_expect(tmp_path):
    """The report, the benchmark and the tests read these keys from rounds.jsonl."""
    record = RoundRecord(
        round=2,
        run_id=7,
        strategy="fedavg",
        compression="int8",
        skipped=None,
        seconds=Seconds(round=3.0, training=2.0, waiting_for_regions=0.5),
        regions={
            "eu": RegionRound(Status.AGGREGATED, Delivery(11, 100, 120), training=Training(50, 0.25, 2.0, 40, 60)),
            "us": RegionRound(Status.FAILED, Delivery(12, 100, 120, "delta"), reason="node error: gone"),
        },
    )
    record.evaluate(
        {"eu": {"loss": 1.0, "accuracy": 0.5, "examples": 10}, "apac": {"loss": 3.0, "accuracy": 1.0, "examples": 30}}
    )
    RoundLog(tmp_path).write(record)
    assert read_rounds(tmp_path) == [
        {
            "round": 2,
            "run_id": 7,
            "strategy": "fedavg",
            "compression": "int8",
            "downlink": "full",
            "aggregated": ["eu"],
            "rejected": [],
            "failed": ["us"],
            "skipped": None,
            "regions": {
                "eu": {
                    "status": "aggregated",
                    "node_id": 11,
                    "reason": None,
                    "downlink_payload_bytes": 100,
                    "downlink_wire_bytes": 120,
                    "downlink": "full",
                    "examples": 50,
                    "train_loss": 0.25,
                    "train_seconds": 2.0,
                    "uplink_payload_bytes": 40,
                    "uplink_wire_bytes": 60,
                    "loss": 1.0,
                    "accuracy": 0.5,
                    "test_examples": 10,
                },
                "us": {
                    "status": "failed",
                    "node_id": 12,
                    "reason": "node error: gone",
                    "downlink_payload_bytes": 100,
                    "downlink_wire_bytes": 120,
                    "downlink": "delta",
                },
                "apac": {"status": "evaluated only", "loss": 3.0, "accuracy": 1.0, "test_examples": 30},
            },
            "uplink_payload_bytes": 40,
            "uplink_wire_bytes": 60,
            "downlink_payload_bytes": 200,
            "downlink_wire_bytes": 240,
            "seconds": {
                "round": 3.0,
                "training": 2.0,
                "overhead": 1.0,  # no reply said how long its evaluation took: round - training
                "waiting_for_regions": 0.5,
                "local": None,
                "phases": None,
            },
            "global": {"loss": 2.5, "accuracy": 0.875, "examples": 40, "evaluated_regions": ["apac", "eu"]},
            "epsilon": None,  # no region trained with DP-SGD
            "stopped": None,
        }
    ]


def test_round_overhead_is_the_round_beyond_the_slowest_regions_evaluation_and_training():
    """Issue 13's definition; each region's timings sit beside its part, the server's in seconds."""
    eu = TaskTimes(pid=101, parent_pid=100, setup=0.01, evaluate=0.25, train=1.0, task=1.3)
    record = RoundRecord(
        round=1,
        run_id=7,
        strategy="fedavg",
        compression="none",
        skipped=None,
        seconds=Seconds(
            round=2.0, training=1.0, waiting_for_regions=0.0, local=eu.local, phases=ServerPhases(0.1, 1.6, 0.3)
        ),
        regions={"eu": RegionRound(Status.AGGREGATED, Delivery(11, 100, 120), task=eu, reply_wait=1.5)},
    ).to_json()
    assert record["seconds"]["overhead"] == 2.0 - 1.25
    assert record["seconds"]["phases"] == {"push": 0.1, "waiting_for_replies": 1.6, "aggregation": 0.3}
    assert record["regions"]["eu"]["clientapp"] == {
        "pid": 101,
        "parent_pid": 100,
        "setup_seconds": 0.01,
        "evaluate_seconds": 0.25,
        "train_seconds": 1.0,
        "task_seconds": 1.3,
        "reply_wait_seconds": 1.5,
        "transport_seconds": 1.5 - 1.3,  # everything between the server and the ClientApp process
    }
