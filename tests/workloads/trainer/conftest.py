"""Shared fixtures for the trainer tests.

`in_process` runs the real ServerApp (`train`: Flower's round loop around our strategy) against
the real ClientApp (with its mods) through a Grid that calls the ClientApp directly instead of
over the network: every part of the trainer except Flower's transport, fast enough for unit
tests. Each node keeps one Context across messages, as a SuperNode keeps a run's node state.
The Deployment Engine tests (test_federation.py) cover the real network path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.supercore.task_identity import TaskIdentity

from workloads.tasks.__main__ import prepare_data
from workloads.trainer.client_app import app as client_app
from workloads.trainer.records import read_rounds
from workloads.trainer.server_app import train
from workloads.trainer.settings import TrainerSettings

REGIONS = ["eu", "us", "apac"]


class InProcessGrid:
    def __init__(self, run_config: dict[str, Any], node_configs: dict[int, dict[str, Any]]) -> None:
        self.contexts = {
            node_id: Context(run_id=1, node_id=node_id, node_config=cfg, state=RecordDict(), run_config=run_config)
            for node_id, cfg in node_configs.items()
        }
        self.offline: set[int] = set()
        self.on_round: list = []  # callables(grid, round) run before each send, to script failures
        self.reply_filters: list = []  # callables(node_id, reply) -> reply, to forge replies
        self.sent_rounds = 0

    def get_node_ids(self) -> Iterable[int]:
        return [n for n in self.contexts if n not in self.offline]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        if messages and messages[0].metadata.message_type == "train":
            self.sent_rounds += 1
            for hook in self.on_round:
                hook(self, self.sent_rounds)
        replies = []
        for message in messages:
            node_id = message.metadata.dst_node_id
            if node_id in self.offline:
                replies.append(Message(Error(code=ErrorCode.NODE_UNAVAILABLE, reason="node offline"), reply_to=message))
                continue
            try:
                reply = client_app(message, self.contexts[node_id])
            except Exception as err:  # what a SuperNode sends back when its ClientApp raises
                reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=repr(err)), reply_to=message)
            for forge in self.reply_filters:
                reply = forge(node_id, reply)
            replies.append(reply)
        return replies


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("digits-data")
    prepare_data("digits", REGIONS, out, seed=0, alpha=0.5)
    return out


@dataclass(frozen=True)
class InProcessRun:
    records: list[dict[str, Any]]
    info: dict[str, Any]
    grid: InProcessGrid
    out_dir: Path

    @property
    def accuracy(self) -> float:
        return self.records[-1]["global"]["accuracy"]


@pytest.fixture
def in_process(tmp_path, digits_data, monkeypatch):
    """run(run_config, faults={region: (fault, scale)}, hooks=[...]) -> InProcessRun."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)

    def run(
        run_config: dict[str, Any], faults: dict[str, tuple[str, float]] | None = None, hooks=(), data=None, forge=()
    ):
        run_config = {"out-dir": str(tmp_path / f"run-{len(list(tmp_path.iterdir()))}"), **run_config}
        node_configs = {}
        for node_id, region in enumerate(REGIONS, start=11):
            cfg: dict[str, Any] = {"region": region, "data-dir": str((data or digits_data) / region)}
            if faults and region in faults:
                cfg["fault"], cfg["fault-scale"] = faults[region]
            node_configs[node_id] = cfg
        grid = InProcessGrid(run_config, node_configs)
        grid.on_round.extend(hooks)
        grid.reply_filters.extend(forge)
        settings = TrainerSettings.from_run_config(run_config)
        info = train(grid, settings, run_id=1)  # type: ignore[arg-type]
        return InProcessRun(read_rounds(settings.out_path), info, grid, settings.out_path)

    return run
