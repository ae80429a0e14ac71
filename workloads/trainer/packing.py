"""Every ArrayRecord of a message crosses the network as one array.

Flower 1.42 sends each Array of a message as objects of their own (the array and its chunks),
and each object is one request on every hop: server -> SuperLink -> SuperNode -> ClientApp
and back. The 1.13M-parameter MLP is 6 tensors: 16 objects, so ~16 requests per hop, each
through the receiving API's whole HTTP stack, for what is one 4.5 MB payload. `pack` replaces
an ArrayRecord of several arrays with one uint8 array holding their bytes back to back, and a
ConfigRecord `<name>::layout` saying how to cut it (keys, dtypes, shapes); `unpack` restores
the record exactly (the same keys, dtypes, shapes and bytes) and refuses a layout that does
not add up. Content without a layout passes through, so either side may run without it.
The server packs what it sends down (GuardedStrategy, so the bytes it records are the ones
sent) and unpacks an update before decoding it; a node unpacks what it receives and packs its
reply in the `packed_transport` mod, inside only the task's timing and training record.
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.compression import MalformedUpdate, to_numpy

PACKED_KEY = "packed"
LAYOUT_SUFFIX = "::layout"
NUMERIC_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex: what a model is made of


class MalformedPacking(MalformedUpdate):
    """A packed record whose layout does not match its bytes; the message names the record (the
    server rejects such an update as it does any malformed one)."""


def _shape(text: str) -> tuple[int, ...]:
    shape = tuple(int(n) for n in text.split(",")) if text else ()
    if any(n < 0 for n in shape):
        raise ValueError(f"shape {text!r} has a negative dimension")
    return shape


def _dtype(text: str) -> np.dtype:
    dtype = np.dtype(text)
    if dtype.kind not in NUMERIC_KINDS:
        raise ValueError(f"dtype {text!r} is not a number type")
    return dtype


def pack(content: RecordDict) -> None:
    """In place: each ArrayRecord of two or more arrays becomes one packed array and a layout."""
    for name, record in list(content.array_records.items()):
        if len(record) < 2:
            continue
        arrays = to_numpy(record)
        data = np.concatenate([np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays.values()])
        content[name] = ArrayRecord({PACKED_KEY: Array(data)})
        content[name + LAYOUT_SUFFIX] = ConfigRecord(
            {
                "keys": list(arrays),
                "dtypes": [a.dtype.str for a in arrays.values()],
                "shapes": [",".join(map(str, a.shape)) for a in arrays.values()],
            }
        )


def unpack(content: RecordDict) -> None:
    """In place: every packed record back to its arrays; MalformedPacking if one does not add up."""
    for layout_name, layout in list(content.config_records.items()):
        if not layout_name.endswith(LAYOUT_SUFFIX):
            continue
        name = layout_name.removesuffix(LAYOUT_SUFFIX)
        try:
            data = content.array_records[name][PACKED_KEY].numpy()
            keys, dtypes, shapes = (list(layout[field]) for field in ("keys", "dtypes", "shapes"))  # type: ignore[arg-type]
            if not len(keys) == len(dtypes) == len(shapes) or data.dtype != np.uint8 or data.ndim != 1:
                raise ValueError("layout fields of different lengths, or the packed array is not flat uint8")
            arrays, offset = {}, 0
            for key, dtype_text, shape_text in zip(keys, dtypes, shapes, strict=True):
                dtype, shape = _dtype(str(dtype_text)), _shape(str(shape_text))
                size = math.prod(shape) * dtype.itemsize
                if offset + size > data.size:
                    raise ValueError(f"{key!r} runs past the packed bytes")
                # A view suffices: Array serializes its bytes at once (np.save).
                arrays[str(key)] = Array(data[offset : offset + size].view(dtype).reshape(shape))
                offset += size
            if offset != data.size:
                raise ValueError(f"{data.size - offset} packed bytes left over")
        except (KeyError, TypeError, ValueError) as err:
            raise MalformedPacking(f"packed record {name!r}: {err}") from None
        content[name] = ArrayRecord(arrays)
        del content[layout_name]


def packed_transport(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod: unpack what came, pack what goes back."""
    unpack(msg.content)
    reply = call_next(msg, context)
    if not reply.has_error():
        pack(reply.content)
    return reply
