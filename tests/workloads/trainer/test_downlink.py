"""Downlink compression: the server mirrors the model the nodes hold and sends the top-k delta
to it; error feedback through the mirror, and a node that lost its model is never silently
trained on a wrong base (the real ServerApp and ClientApp, in process: conftest.in_process)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from workloads.trainer.client_app import app as client_app
from workloads.trainer.compression import TopkCodec, to_numpy
from workloads.trainer.downlink import DELTA, DOWNLINK_RECORD_KEY, FULL, DownlinkMirror, WrongBase, digest
from workloads.trainer.settings import TrainerSettings
from workloads.trainer.task import initial_weights

RNG = np.random.default_rng(0)


def _model() -> dict[str, np.ndarray]:
    return {"w": RNG.standard_normal((40, 50)).astype(np.float32), "b": RNG.standard_normal(40).astype(np.float32)}


def test_the_mirror_reaches_a_fixed_global_model_through_error_feedback():
    """What one round holds back goes down in later ones: the gap closes to a quantization step."""
    initial, target = _model(), _model()
    mirror = DownlinkMirror(initial, TopkCodec(0.05, 8))
    gaps = []
    for _ in range(60):
        mirror.advance(target)
        gaps.append(max(np.abs(mirror.model[k] - target[k]).max() for k in target))
    assert gaps[-1] < 0.02 * gaps[0] and gaps[-1] < 0.05


def test_a_node_gets_the_delta_only_while_it_holds_the_base_else_the_full_model():
    initial = _model()
    mirror = DownlinkMirror(initial, TopkCodec(0.05, 8))
    mirror.advance(_model())
    arrays, record = mirror.content(7)  # never heard of: holds the initial model, which nodes build
    assert record["mode"] == DELTA and record["base"] == digest(initial)
    mirror.acknowledge(7, replied=True)
    mirror.acknowledge(8, replied=False)
    mirror.advance(_model())
    assert mirror.content(7)[1]["mode"] == DELTA
    arrays, record = mirror.content(8)
    assert record["mode"] == FULL and record["target"] == mirror.version == digest(to_numpy(arrays))


def _in_process_run(in_process, hooks=()):
    config = {"rounds": 4, "compression": "topk", "topk-fraction": 0.05, "downlink": "topk"}
    return in_process({**config, "downlink-topk-fraction": 0.2}, hooks=hooks)


def test_a_compressed_downlink_trains_and_sends_far_fewer_bytes_down(in_process):
    run = _in_process_run(in_process)
    for record in run.records:
        assert set(record["aggregated"]) == {"eu", "us", "apac"}
        assert record["downlink"] == "topk"
        for part in record["regions"].values():  # every node got a delta, the first round included
            assert part["downlink"] == "delta" and part["downlink_payload_bytes"] < _full_bytes() / 4
    assert run.accuracy > 0.75  # top-k 5% both ways, 4 rounds
    assert run.info["metrics"]["accuracy"] == run.accuracy


def _full_bytes() -> int:
    """The digits model in float32: what a full downlink sends."""
    return sum(v.nbytes for v in initial_weights(TrainerSettings(task="digits")).values())


def _restart(node_index: int, at_round: int):
    """A node that loses its run state (a SuperNode restart) just before `at_round`."""

    def hook(grid, sent_round):
        if sent_round == at_round:
            node_id = sorted(grid.contexts)[node_index]
            grid.contexts[node_id].state = RecordDict()

    return hook


def test_a_node_that_lost_its_model_refuses_the_delta_then_gets_the_full_model(in_process):
    run = _in_process_run(in_process, hooks=[_restart(0, at_round=3)])
    third, fourth = run.records[2], run.records[3]
    assert third["failed"] == ["eu"] and "WrongBase" in third["regions"]["eu"]["reason"]
    assert "restarted or missed a round" in third["regions"]["eu"]["reason"]
    # the next round it is sent the whole model (float32), trains on it and is aggregated again
    full = _full_bytes()
    assert fourth["regions"]["eu"]["downlink"] == "full" and fourth["regions"]["eu"]["downlink_payload_bytes"] >= full
    assert fourth["regions"]["us"]["downlink"] == "delta"
    assert fourth["regions"]["us"]["downlink_payload_bytes"] < full / 4
    assert set(fourth["aggregated"]) == {"eu", "us", "apac"}


def test_a_node_that_missed_rounds_gets_the_full_model_when_it_is_back(in_process):
    def offline_from_round_2_until_sampled_for_4(grid, sent_round):
        # fails round 2 as it is sent, is not sampled for round 3, and is back for round 4
        node_id = sorted(grid.contexts)[1]
        (grid.offline.add if sent_round == 2 else grid.offline.discard)(node_id)

    run = _in_process_run(in_process, hooks=[offline_from_round_2_until_sampled_for_4])
    assert run.records[1]["failed"] == ["us"]
    back = run.records[3]["regions"]["us"]
    assert back["downlink"] == "full" and back["downlink_payload_bytes"] >= _full_bytes()
    assert run.records[3]["regions"]["eu"]["downlink"] == "delta"
    assert set(run.records[3]["aggregated"]) == {"eu", "us", "apac"}


def test_a_delta_against_a_model_the_node_does_not_hold_is_refused_not_trained(digits_data, monkeypatch):
    for attribute in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, attribute, 1)
    run_config = {"task": "digits", "downlink": "topk", "compression": "int8"}
    node_config = {"region": "eu", "data-dir": str(digits_data / "eu")}
    context = Context(run_id=1, node_id=11, node_config=node_config, state=RecordDict(), run_config=run_config)
    initial = initial_weights(TrainerSettings(task="digits"))
    mirror = DownlinkMirror({k: v + 1 for k, v in initial.items()}, TopkCodec(0.05))  # a model it never had
    mirror.advance(initial)
    arrays, record = mirror.content(11)
    assert record["mode"] == DELTA
    content = RecordDict({"arrays": arrays, DOWNLINK_RECORD_KEY: record})
    message = Message(content, dst_node_id=11, message_type=MessageType.EVALUATE)
    with pytest.raises(WrongBase, match="the update is against"):
        client_app(message, context)
