"""Uplink compression: a node sends its update in fewer bytes; the server decodes it back to
full weights before any strategy sees it, so every strategy composes with every mode.

Modes (the update is the delta from the global model the node received):
- `none`: the trained weights as float32.
- `fp16`: the delta in float16 (2x fewer bytes).
- `int8`: the delta quantized to int8 with one float32 scale per output row (~4x).
- `topk`: per tensor, only the `topk_fraction` largest-magnitude entries of the delta plus
  the node's carried-over residual, as (gap to the previous index, int8 value), one scale
  per tensor; the gaps use the smallest unsigned type that holds them (uint8 at ~1% density
  or more in most tensors), so an entry costs 2-3 bytes instead of 8. What is not
  sent (and the quantization error of what is) becomes the new residual, added to the next
  round's delta: error feedback (Seide et al. 2014; Lin et al. 2018, Deep Gradient
  Compression), which keeps sparsified training converging. Each message runs in a fresh
  ClientApp process, so the residual lives in the run's node state (`context.state`), which
  the SuperNode keeps between messages of the same run.

Encoded array keys: `<name>` (none, fp16) or `<name>::q`, `<name>::scale`, and for topk
`<name>::gaps`.
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.settings import Compression, TrainerSettings

Tensors = dict[str, np.ndarray]

_INT8_MAX = 127
RESIDUAL_STATE_KEY = "topk-residual"
COMPRESSION_RECORD_KEY = "compression"


class MalformedUpdate(ValueError):
    """An update that cannot be decoded against the global model; the message says why."""


def _rows(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1) if values.ndim >= 2 else values.reshape(1, -1)


def _quantize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: q = round(v / scale), scale = max|row| / 127."""
    rows = _rows(values).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        absmax = np.abs(rows).max(axis=1, keepdims=True) if rows.size else np.zeros((len(rows), 1))
        scale = np.where(absmax > 0, absmax / _INT8_MAX, 1.0).astype(np.float32)
        # A non-finite row gets a non-finite scale, so the server sees it and rejects the update.
        scale = np.where(np.isfinite(absmax), scale, absmax).astype(np.float32)
        q = np.clip(np.nan_to_num(np.rint(rows / scale)), -_INT8_MAX, _INT8_MAX).astype(np.int8)
    return q.reshape(values.shape), scale.reshape(-1)


def _dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # 0 * inf is NaN on purpose: the update gets rejected
        return (_rows(q).astype(np.float32) * scale.reshape(-1, 1)).reshape(q.shape)


_GAP_DTYPES = (np.uint8, np.uint16, np.uint32)


def _gaps(indices: np.ndarray) -> np.ndarray:
    """Sorted indices as differences from the previous one (the first from 0), narrowest type."""
    gaps = np.diff(indices, prepend=0)
    largest = int(gaps.max()) if gaps.size else 0
    return gaps.astype(next(t for t in _GAP_DTYPES if largest <= np.iinfo(t).max))


def _topk(values: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(index gaps, int8 values, scale, what the server will reconstruct) of the largest entries."""
    flat = values.reshape(-1)
    k = min(flat.size, max(1, math.ceil(fraction * flat.size))) if flat.size else 0
    idx = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :]) if k else np.zeros(0, np.int64)
    q, scale = _quantize(flat[idx])
    sent = np.zeros_like(flat)
    sent[idx] = _dequantize(q, scale)
    return _gaps(idx), q, scale, sent.reshape(values.shape)


def encode(
    local: Tensors,
    reference: Tensors,
    mode: Compression,
    topk_fraction: float = 0.01,
    residual: Tensors | None = None,
) -> tuple[Tensors, Tensors | None]:
    """The arrays a node sends for `local` weights trained from `reference`, and the new
    error-feedback residual (topk only; None otherwise)."""
    if set(local) != set(reference):
        raise ValueError(f"local and reference weights differ in names: {sorted(set(local) ^ set(reference))}")
    if mode is Compression.NONE:
        return {k: v.astype(np.float32, copy=False) for k, v in local.items()}, None
    delta = {k: local[k].astype(np.float32) - reference[k].astype(np.float32) for k in local}
    if mode is Compression.FP16:
        return {k: d.astype(np.float16) for k, d in delta.items()}, None
    encoded: Tensors = {}
    if mode is Compression.INT8:
        for key, d in delta.items():
            encoded[f"{key}::q"], encoded[f"{key}::scale"] = _quantize(d)
        return encoded, None
    new_residual: Tensors = {}
    for key, d in delta.items():
        carried = residual.get(key) if residual else None
        accumulated = d + carried if carried is not None and carried.shape == d.shape else d
        gaps, q, scale, sent = _topk(accumulated, topk_fraction)
        encoded[f"{key}::gaps"], encoded[f"{key}::q"], encoded[f"{key}::scale"] = gaps, q, scale
        new_residual[key] = accumulated - sent
    return encoded, new_residual


def _expect(arrays: Tensors, key: str, dtypes: tuple[type, ...], shape: tuple[int, ...] | None) -> np.ndarray:
    value = arrays[key]
    if value.dtype.type not in dtypes:
        names = " or ".join(np.dtype(t).name for t in dtypes)
        raise MalformedUpdate(f"array {key!r} has dtype {value.dtype}, expected {names}")
    if shape is not None and value.shape != shape:
        raise MalformedUpdate(f"array {key!r} has shape {value.shape}, expected {shape}")
    return value


def _expected_keys(reference: Tensors, mode: Compression) -> set[str]:
    suffixes = {
        Compression.NONE: ("",),
        Compression.FP16: ("",),
        Compression.INT8: ("::q", "::scale"),
        Compression.TOPK: ("::gaps", "::q", "::scale"),
    }[mode]
    return {f"{key}{suffix}" for key in reference for suffix in suffixes}


def decode(encoded: Tensors, reference: Tensors, mode: Compression) -> Tensors:
    """Full float32 weights from what a node sent; MalformedUpdate if it does not fit the
    global model (names, dtypes, shapes, indices)."""
    expected = _expected_keys(reference, mode)
    missing, extra = sorted(expected - set(encoded)), sorted(set(encoded) - expected)
    if missing or extra:
        parts = [f"missing arrays {missing[:3]}" if missing else "", f"unexpected arrays {extra[:3]}" if extra else ""]
        raise MalformedUpdate(f"not a {mode} update of this model: " + "; ".join(p for p in parts if p))
    weights: Tensors = {}
    for key, ref in reference.items():
        ref32 = ref.astype(np.float32)
        if mode is Compression.NONE:
            weights[key] = _expect(encoded, key, (np.float32,), ref.shape)
        elif mode is Compression.FP16:
            weights[key] = ref32 + _expect(encoded, key, (np.float16,), ref.shape).astype(np.float32)
        elif mode is Compression.INT8:
            q = _expect(encoded, f"{key}::q", (np.int8,), ref.shape)
            rows = _rows(ref).shape[0]
            scale = _expect(encoded, f"{key}::scale", (np.float32,), (rows,) if ref.size else None)
            weights[key] = ref32 + _dequantize(q, scale) if ref.size else ref32
        else:
            gaps = _expect(encoded, f"{key}::gaps", _GAP_DTYPES, None)
            q = _expect(encoded, f"{key}::q", (np.int8,), gaps.shape)
            scale = _expect(encoded, f"{key}::scale", (np.float32,), (1,) if gaps.size else None)
            idx = np.cumsum(gaps, dtype=np.int64) if gaps.ndim == 1 else gaps
            if gaps.ndim != 1 or (idx.size and int(idx[-1]) >= ref.size) or (gaps[1:] == 0).any():
                raise MalformedUpdate(
                    f"array {key!r}::gaps does not give distinct indices inside a tensor of {ref.size} entries"
                )
            delta = np.zeros(ref.size, dtype=np.float32)
            if idx.size:
                delta[idx] = _dequantize(q, scale)
            weights[key] = ref32 + delta.reshape(ref.shape)
    return weights


def to_numpy(record: ArrayRecord) -> Tensors:
    return {key: array.numpy() for key, array in record.items()}


def to_record(tensors: Tensors) -> ArrayRecord:
    return ArrayRecord({key: Array(np.ascontiguousarray(value)) for key, value in tensors.items()})


def compress_uplink(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod: replace a train reply's weights with their encoding for the run's mode."""
    reply = call_next(msg, context)
    if msg.metadata.message_type != MessageType.TRAIN or reply.has_error():
        return reply
    settings = TrainerSettings.from_run_config(context.run_config)
    residual = None
    if settings.compression is Compression.TOPK and RESIDUAL_STATE_KEY in context.state:
        residual = to_numpy(context.state.array_records[RESIDUAL_STATE_KEY])
    encoded, residual = encode(
        to_numpy(reply.content.array_records["arrays"]),
        to_numpy(msg.content.array_records["arrays"]),
        settings.compression,
        settings.topk_fraction,
        residual,
    )
    if residual is not None:
        context.state[RESIDUAL_STATE_KEY] = to_record(residual)
    reply.content["arrays"] = to_record(encoded)
    reply.content[COMPRESSION_RECORD_KEY] = ConfigRecord({"mode": settings.compression.value})
    return reply
