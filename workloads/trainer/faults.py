"""Fault injection for drills and tests: a node told (by its own node config) to misbehave
sends a corrupted update, so the server-side defences can be exercised on the real network
path. Only the node's operator sets node config; a real attacker controls its node anyway.

    --node-config 'fault="sign-flip" fault-scale=4.0'   # sends global - 4 * (its honest delta)
    --node-config 'fault="nan"'                          # sends an update containing NaN
"""

from __future__ import annotations

import numpy as np
from flwr.app import Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.compression import Tensors, to_numpy, to_record

FAULTS = ("sign-flip", "nan")


def corrupt(local: Tensors, reference: Tensors, fault: str, scale: float) -> Tensors:
    """The update a faulty node sends instead of `local` (trained from `reference`)."""
    if fault == "sign-flip":
        return {k: (reference[k] - scale * (v - reference[k])).astype(v.dtype) for k, v in local.items()}
    if fault == "nan":
        first = next(iter(local))
        poisoned = dict(local)
        poisoned[first] = local[first].copy()
        poisoned[first].reshape(-1)[0] = np.nan
        return poisoned
    raise ValueError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)}")


def inject_fault(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod: corrupt this node's train replies when its node config asks for it."""
    reply = call_next(msg, context)
    fault = str(context.node_config.get("fault", ""))
    if not fault or msg.metadata.message_type != MessageType.TRAIN or reply.has_error():
        return reply
    scale = float(context.node_config.get("fault-scale", 1.0))
    local = to_numpy(reply.content.array_records["arrays"])
    reference = to_numpy(msg.content.array_records["arrays"])
    reply.content["arrays"] = to_record(corrupt(local, reference, fault, scale))
    return reply
