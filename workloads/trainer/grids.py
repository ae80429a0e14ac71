"""The Grid the ServerApp's rounds run on: Flower's own, polled for replies at the run's
`reply-poll-interval` instead of Flower 1.42's fixed 3 s, and timed.

Flower's `send_and_receive` pushes a round's messages, then pulls replies every 3 s until all
are in: each round waits up to 3 s after its last reply. PromptGrid does the same through the
Grid's public push/pull calls, sleeping `interval` between pulls, and keeps what the round
record's phases need (Exchange): how long the push took, and when each node's reply arrived.
DelegatingGrid passes every Grid call through, so a wrapper overrides only what it changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run


class DelegatingGrid(Grid):
    def __init__(self, grid: Grid) -> None:
        self._grid = grid

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def set_run(self, run: Run) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Run:
        return self._grid.run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self._grid.send_and_receive(messages, timeout=timeout)


@dataclass
class Exchange:
    """One send_and_receive, timed on the server's clock."""

    push_seconds: float  # serializing and pushing every message to the SuperLink
    reply_seconds: dict[int, float] = field(default_factory=dict)  # node id -> push done until its reply was pulled


class PromptGrid(DelegatingGrid):
    def __init__(self, grid: Grid, interval: float) -> None:
        super().__init__(grid)
        self.interval = interval
        self.last: Exchange | None = None  # the latest send_and_receive

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Flower's semantics: push, then pull until every reply is in or `timeout` seconds
        after the push (None: no limit)."""
        started = time.monotonic()
        waiting = set(self._grid.push_messages(messages))
        pushed = time.monotonic()
        exchange = self.last = Exchange(push_seconds=pushed - started)
        replies: list[Message] = []
        while waiting and (timeout is None or time.monotonic() - pushed < timeout):
            for reply in self._grid.pull_messages(waiting):
                exchange.reply_seconds[reply.metadata.src_node_id] = time.monotonic() - pushed
                waiting.discard(reply.metadata.reply_to_message_id)
                replies.append(reply)
            if waiting:
                time.sleep(self.interval)
        return replies
