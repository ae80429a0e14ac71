"""Downlink compression: what goes down to the nodes is the top-k delta between the global
model and the model the nodes already hold, with server-side error feedback.

The server keeps a mirror of the model the nodes hold. Each round it sends the top-k of
(global - mirror) in the uplink's codec (compression.TopkCodec) and moves the mirror by
exactly what it sent, so what is held back stays in (global - mirror) and goes down in a
later round: error feedback, with the mirror as its state. Nodes train from the mirror; their
updates are applied to the exact global model (guarded_strategy.py), so nothing they learn is
lost to the downlink's error.

A delta only fits the model it was computed against. Every downlink message names the model
it expects the node to hold and the one it produces (`base`, `target`: digests of the
weights). The server tracks per node the version each last acknowledged (a reply without
error) and sends the full mirror, float32, to a node it knows nothing of or that missed a
round. Before the first round nodes hold the initial model, which each builds itself from
the run's task and seed (task.initial_weights), proven equal by its digest. A node whose own
model does not match `base` (it restarted and lost its state) refuses the message with an
error instead of training on a wrong base; the server forgets what that node held and sends
it the full model in the next round. The node keeps its model in the run's node state
(`context.state`), as the uplink keeps its residual.
"""

from __future__ import annotations

import hashlib

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.compression import Tensors, TopkCodec, decode, encode, to_numpy, to_record
from workloads.trainer.settings import Compression, TrainerSettings
from workloads.trainer.task import initial_weights

DOWNLINK_RECORD_KEY = "downlink"
HELD_MODEL_STATE_KEY = "downlink-model"
FULL, DELTA = "full", "delta"


class WrongBase(RuntimeError):
    """The node does not hold the model a downlink delta was computed against."""


def digest(tensors: Tensors) -> str:
    """What identifies a model version: sha256 over its names, shapes and float32 bytes."""
    hasher = hashlib.sha256()
    for key in sorted(tensors):
        value = np.ascontiguousarray(tensors[key], dtype=np.float32)
        hasher.update(f"{key}:{value.shape};".encode())
        hasher.update(value.tobytes())
    return hasher.hexdigest()


class DownlinkMirror:
    """The server's side: the model the nodes hold, and which version each node holds."""

    def __init__(self, initial: Tensors, codec: TopkCodec) -> None:
        self.codec = codec
        self.model = {k: v.astype(np.float32) for k, v in initial.items()}
        self.version = self.initial = digest(self.model)
        self.held: dict[int, str] = {}  # node id -> the version it acknowledged
        self._delta: Tensors = {}
        self._base = self.version

    def advance(self, global_model: Tensors) -> None:
        """Move the mirror toward `global_model` by one top-k delta (what this round sends)."""
        self._base = self.version
        self._delta, _ = encode(global_model, self.model, Compression.TOPK, self.codec)
        self.model = decode(self._delta, self.model, Compression.TOPK, self.codec)
        self.version = digest(self.model)

    def content(self, node_id: int) -> tuple[ArrayRecord, ConfigRecord]:
        """What goes down to `node_id`: the delta if it holds this round's base, else the mirror."""
        if self.held.get(node_id, self.initial) == self._base:
            return to_record(self._delta), ConfigRecord({"mode": DELTA, "base": self._base, "target": self.version})
        return to_record(self.model), ConfigRecord({"mode": FULL, "target": self.version})

    def acknowledge(self, node_id: int, replied: bool) -> None:
        """A reply without error means the node holds this round's version; anything else,
        that the server no longer knows what it holds."""
        self.held[node_id] = self.version if replied else ""  # "": matches no base, so the full model next


def _held_model(context: Context, settings: TrainerSettings) -> Tensors:
    if HELD_MODEL_STATE_KEY in context.state.array_records:
        return to_numpy(context.state.array_records[HELD_MODEL_STATE_KEY])
    return initial_weights(settings)


def expand_downlink(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod: rebuild the model the server meant from what came down, check it is the
    one the server holds for this node, keep it, and pass the full weights on."""
    record = msg.content.config_records.get(DOWNLINK_RECORD_KEY)
    if record is None or msg.metadata.message_type not in (MessageType.TRAIN, MessageType.EVALUATE):
        return call_next(msg, context)
    settings = TrainerSettings.from_run_config(context.run_config)
    received = to_numpy(msg.content.array_records["arrays"])
    if record["mode"] == DELTA:
        held = _held_model(context, settings)
        if digest(held) != record["base"]:
            raise WrongBase(
                f"this node holds model {digest(held)[:12]}, the update is against {str(record['base'])[:12]} "
                "(restarted or missed a round): the server sends the full model next round"
            )
        received = decode(received, held, Compression.TOPK, TopkCodec.downlink(settings))
    if digest(received) != record["target"]:
        raise WrongBase(f"the model rebuilt from the downlink is not {str(record['target'])[:12]}")
    context.state[HELD_MODEL_STATE_KEY] = to_record(received)
    msg.content["arrays"] = to_record(received)
    return call_next(msg, context)
