"""The ServerApp's grid: Flower's send-and-receive semantics, pulled promptly and timed."""

from collections.abc import Iterable

import pytest
from flwr.app import Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from workloads.trainer.grids import PromptGrid


@pytest.fixture(autouse=True)
def a_serverapp_task(monkeypatch):
    """Messages are created inside a task (Flower reads its run and node from TaskIdentity)."""
    for attribute in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, attribute, 1)


class SlowNodes:
    """A grid whose node `n` replies on the n-th pull after the push (never, for node 0)."""

    def __init__(self) -> None:
        self.pulls = 0
        self.pushed: dict[str, Message] = {}

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        for message in messages:  # as Flower's grid does on push: the id replies refer to
            message.metadata.__dict__["_message_id"] = message.object_id
        self.pushed = {m.metadata.message_id: m for m in messages}
        return list(self.pushed)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        self.pulls += 1
        due = [self.pushed[i] for i in message_ids if self.pushed[i].metadata.dst_node_id == self.pulls]
        return [_reply(m) for m in due]


def _reply(message: Message) -> Message:
    reply = Message(RecordDict(), reply_to=message)
    reply.metadata.__dict__["_src_node_id"] = message.metadata.dst_node_id  # as the SuperLink sets it
    return reply


def _messages(*node_ids: int) -> list[Message]:
    return [Message(RecordDict(), dst_node_id=n, message_type="train") for n in node_ids]


def test_it_pulls_until_every_reply_is_in_and_times_each():
    nodes = SlowNodes()
    grid = PromptGrid(nodes, interval=0.01)  # type: ignore[arg-type]
    replies = list(grid.send_and_receive(_messages(1, 2, 3)))
    assert sorted(r.metadata.src_node_id for r in replies) == [1, 2, 3]
    assert nodes.pulls == 3  # no pull after the last reply
    exchange = grid.last
    assert exchange is not None and sorted(exchange.reply_seconds) == [1, 2, 3]
    assert exchange.reply_seconds[1] <= exchange.reply_seconds[2] <= exchange.reply_seconds[3]


def test_after_the_timeout_it_returns_the_replies_it_has():
    grid = PromptGrid(SlowNodes(), interval=0.01)  # type: ignore[arg-type]
    replies = list(grid.send_and_receive(_messages(0, 1), timeout=0.2))  # node 0 never answers
    assert [r.metadata.src_node_id for r in replies] == [1]
    assert grid.last is not None and list(grid.last.reply_seconds) == [1]
