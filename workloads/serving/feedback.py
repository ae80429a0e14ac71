"""True labels for answers already given: the canary analysis's accuracy signal.

A client that learns the true class of a request later (a user's correction, a downstream
check) posts it to `POST /v2/models/{m}/feedback` with the request's V2 `id`. This replica
remembers which version answered each recent id and what it answered, so a label becomes a
`correct` or `incorrect` count for that version. Memory is bounded: the newest
`RECENT_ANSWERS` ids (each id at most `MAX_ID_CHARS` characters; longer ids are answered but
not remembered), oldest forgotten first, and an id is forgotten once labelled (one label per
answer, never counted twice). Labels for ids this replica did not serve, or no longer
remembers, are refused with 404: behind a load balancer, only the replica that answered can
count the label, which is why the id is the server's to generate when the client sent none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from workloads.serving.protocol import InferError, bad_request

RECENT_ANSWERS = 65_536  # ids remembered per replica (~10 MB at most with MAX_ID_CHARS ids)
MAX_ID_CHARS = 128


@dataclass(frozen=True)
class Answered:
    version: str
    labels: np.ndarray  # int64 (rows,): the top-1 class answered for each row


@dataclass(frozen=True)
class Label:
    request_id: str
    labels: tuple[int, ...]  # one true class per row of the request


class RecentAnswers:
    def __init__(self, capacity: int = RECENT_ANSWERS):
        self._capacity = capacity
        self._answers: OrderedDict[str, Answered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def remember(self, request_id: str, version: str, labels: np.ndarray) -> None:
        if len(request_id) > MAX_ID_CHARS:
            return
        self._answers[request_id] = Answered(version, labels)
        self._answers.move_to_end(request_id)
        if len(self._answers) > self._capacity:
            self._answers.popitem(last=False)

    def take(self, request_id: str) -> Answered | None:
        """The answer given to `request_id`, forgotten from now on (None: unknown or expired)."""
        return self._answers.pop(request_id, None)


def parse_feedback(body: bytes) -> list[Label]:
    """`{"id": "...", "label": <class>}` (a list of classes for a request of several rows), or
    the batch form `{"feedback": [<such objects>...]}`."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise bad_request(f"feedback body is not valid JSON: {err}") from None
    if isinstance(request, dict) and "feedback" in request:
        items = request["feedback"]
        if not isinstance(items, list) or not items:
            raise bad_request('feedback must be a non-empty list of {"id": ..., "label": ...} objects')
    else:
        items = [request]
    return [_label(item) for item in items]


def _label(item: Any) -> Label:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise bad_request('feedback needs {"id": "<request id>", "label": <class>}')
    raw = item.get("label")
    values: list[Any] = raw if isinstance(raw, list) else [raw]
    labels = tuple(v for v in values if type(v) is int and v >= 0)
    if not labels or len(labels) != len(values):
        raise InferError(422, f"feedback for id {item['id']!r}: label must be a class index (or one per row)")
    return Label(item["id"], labels)


def score(answered: Answered, label: Label) -> tuple[int, int]:
    """(correct, incorrect) rows of one answer against its true labels."""
    if len(label.labels) != len(answered.labels):
        raise InferError(
            422,
            f"feedback for id {label.request_id!r} has {len(label.labels)} labels; "
            f"the request had {len(answered.labels)} rows",
        )
    correct = int((answered.labels == np.asarray(label.labels)).sum())
    return correct, len(label.labels) - correct
