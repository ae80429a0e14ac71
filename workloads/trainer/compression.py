"""Uplink compression: a node sends its update in fewer bytes; the server decodes it back to
full weights before any strategy sees it, so every strategy composes with every mode.

Modes (the update is the delta from the global model the node received):
- `none`: the trained weights as float32.
- `fp16`: the delta in float16 (2x fewer bytes).
- `int8`: the delta quantized to int8 with one float32 scale per output row (~4x).
- `topk`: across the whole model, only the `topk-fraction` largest-magnitude entries of the
  delta plus the node's carried-over residual (one threshold for the model: a tensor whose
  update is larger sends more of it), with one scale per tensor (TopkCodec): values in
  `topk-value-bits` (8: int8; 4: two to a byte), indices as differences from the previous
  one, LEB128 varints zlib-compressed (`topk-index-coding=varint`, ~1 byte an index at 1%
  density) or the narrowest fixed-width unsigned type (`gaps`). What is not sent (and the
  quantization error of what is) becomes the new residual, added to the next round's delta:
  error feedback (Seide et al. 2014; Lin et al. 2018, Deep Gradient Compression), which
  keeps sparsified training converging. Each message runs in a fresh ClientApp process, so
  the residual lives in the run's node state (`context.state`), which the SuperNode keeps
  between messages of the same run. The downlink (downlink.py) uses the same codec.

Encoded array keys: `<name>` (none, fp16) or `<name>::q`, `<name>::scale` (int8); topk packs
the whole update into one uint8 array `topk` (each array in a message costs its own record
framing, ~370 bytes: at 1% that is a tenth of the update).
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.settings import TOPK_INDEX_CODINGS, TOPK_VALUE_BITS, Compression, TrainerSettings

Tensors = dict[str, np.ndarray]

_INT8_MAX = 127
TOPK_ARRAY_KEY = "topk"
RESIDUAL_STATE_KEY = "topk-residual"
COMPRESSION_RECORD_KEY = "compression"


class MalformedUpdate(ValueError):
    """An update that cannot be decoded against the global model; the message says why."""


def _rows(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1) if values.ndim >= 2 else values.reshape(1, -1)


def _quantize(values: np.ndarray, levels: int = _INT8_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per row: q = round(v / scale) in -levels..levels, scale = max|row| / levels."""
    rows = _rows(values).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        absmax = np.abs(rows).max(axis=1, keepdims=True) if rows.size else np.zeros((len(rows), 1))
        scale = np.where(absmax > 0, absmax / levels, 1.0).astype(np.float32)
        # A non-finite row gets a non-finite scale, so the server sees it and rejects the update.
        scale = np.where(np.isfinite(absmax), scale, absmax).astype(np.float32)
        q = np.clip(np.nan_to_num(np.rint(rows / scale)), -levels, levels).astype(np.int8)
    return q.reshape(values.shape), scale.reshape(-1)


def _dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # 0 * inf is NaN on purpose: the update gets rejected
        return (_rows(q).astype(np.float32) * scale.reshape(-1, 1)).reshape(q.shape)


_GAP_DTYPES = (np.uint8, np.uint16, np.uint32)


@dataclass(frozen=True)
class TopkCodec:
    """How a top-k update is cut and packed: the share of entries sent, bits per value, and
    how the indices are coded (`gaps`: fixed-width differences; `varint`: LEB128 differences,
    zlib-compressed: most gaps fit in one byte and the rest of their entropy zlib takes)."""

    fraction: float = 0.01
    value_bits: int = 8
    index_coding: str = "varint"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"topk-fraction={self.fraction} must be in (0, 1]")
        if self.value_bits not in TOPK_VALUE_BITS:
            raise ValueError(f"topk-value-bits={self.value_bits} must be one of {TOPK_VALUE_BITS}")
        if self.index_coding not in TOPK_INDEX_CODINGS:
            raise ValueError(f"topk-index-coding={self.index_coding!r} must be one of {TOPK_INDEX_CODINGS}")

    @classmethod
    def uplink(cls, settings: TrainerSettings) -> TopkCodec:
        return cls(settings.topk_fraction, settings.topk_value_bits, settings.topk_index_coding)

    @classmethod
    def downlink(cls, settings: TrainerSettings) -> TopkCodec:
        return cls(settings.downlink_topk_fraction, settings.topk_value_bits, settings.topk_index_coding)

    @property
    def levels(self) -> int:
        """The largest quantized magnitude: values are rounded to -levels..levels times a scale."""
        return (1 << (self.value_bits - 1)) - 1


def _gaps(indices: np.ndarray) -> bytes:
    """Sorted indices as differences from the previous one (the first from 0) in the narrowest
    unsigned type, after one byte naming its width."""
    gaps = np.diff(indices, prepend=0)
    largest = int(gaps.max()) if gaps.size else 0
    dtype = next(t for t in _GAP_DTYPES if largest <= np.iinfo(t).max)
    return bytes([np.dtype(dtype).itemsize]) + gaps.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


def _varint(values: np.ndarray) -> bytes:
    """LEB128: 7 bits per byte, the high bit set on every byte but a number's last."""
    values = values.astype(np.uint64)
    lengths = 1 + np.searchsorted(np.array([1 << (7 * n) for n in range(1, 5)], np.uint64), values, side="right")
    owner = np.repeat(np.arange(values.size), lengths)
    position = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = (values[owner] >> (7 * position).astype(np.uint64)) & np.uint64(0x7F)
    out |= np.where(position < lengths[owner] - 1, 0x80, 0).astype(np.uint64)
    return out.astype(np.uint8).tobytes()


def _unvarint(data: np.ndarray) -> np.ndarray:
    if data.size and data[-1] & 0x80:
        raise MalformedUpdate("the top-k update's indices end inside a varint")
    last = (data & 0x80) == 0
    owner = np.cumsum(last) - last
    starts = np.flatnonzero(np.concatenate(([True], last[:-1]))) if data.size else np.zeros(0, np.int64)
    position = np.arange(data.size) - starts[owner]
    if (position > 4).any():
        raise MalformedUpdate("the top-k update's indices hold a varint longer than 5 bytes")
    values = np.zeros(int(last.sum()), np.int64)
    np.add.at(values, owner, (data & 0x7F).astype(np.int64) << (7 * position))
    return values


def _pack_indices(indices: np.ndarray, codec: TopkCodec) -> bytes:
    if codec.index_coding == "gaps":
        return _gaps(indices)
    return zlib.compress(_varint(np.diff(indices, prepend=0)), 9)


def _unpack_indices(packed: bytes, codec: TopkCodec, count: int, size: int) -> np.ndarray:
    """`count` distinct sorted indices into a model of `size` entries, or MalformedUpdate."""
    if codec.index_coding == "gaps":
        width = packed[0] if packed else 0
        if width not in (1, 2, 4) or (len(packed) - 1) != width * count:
            raise MalformedUpdate(f"the top-k update's fixed-width indices do not hold {count} gaps of 1, 2 or 4 bytes")
        gaps = np.frombuffer(packed[1:], np.dtype(f"<u{width}")).astype(np.int64)
    else:
        inflater = zlib.decompressobj()
        try:  # at most 5 bytes per sent entry: a zlib bomb stops there
            raw = inflater.decompress(packed, 5 * count + 5)
        except zlib.error as err:
            raise MalformedUpdate(f"the top-k update's indices are not zlib data: {err}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise MalformedUpdate("the top-k update's indices inflate past 5 bytes per entry, or are cut short")
        gaps = _unvarint(np.frombuffer(raw, np.uint8))
    if gaps.size != count or (gaps[1:] == 0).any() or (gaps.size and int(gaps.sum()) >= size):
        raise MalformedUpdate(
            f"the top-k update's indices are not {count} distinct entries inside a model of {size} entries"
        )
    return np.cumsum(gaps)


def _pack_values(q: np.ndarray, codec: TopkCodec) -> bytes:
    """int8 as is; 4-bit values offset to 1..15 and two to a byte."""
    if codec.value_bits == 8:
        return q.tobytes()
    nibbles = (q.astype(np.int16) + 8).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(8))
    return ((nibbles[0::2] << 4) | nibbles[1::2]).tobytes()


def _values_size(count: int, codec: TopkCodec) -> int:
    return count if codec.value_bits == 8 else (count + 1) // 2


def _unpack_values(packed: bytes, codec: TopkCodec, count: int) -> np.ndarray:
    if codec.value_bits == 8:
        return np.frombuffer(packed, np.int8)
    data = np.frombuffer(packed, np.uint8)
    nibbles = np.stack([data >> 4, data & 0x0F], axis=1).reshape(-1)[:count]
    if (nibbles == 0).any():
        raise MalformedUpdate("the top-k update holds a 4-bit value outside -7..7")
    return (nibbles.astype(np.int16) - 8).astype(np.int8)


def _layout(reference: Tensors) -> tuple[list[str], np.ndarray]:
    """The model as one flat vector: its tensors in name order and where each starts (plus the end)."""
    keys = sorted(reference)
    return keys, np.cumsum([0] + [reference[k].size for k in keys])


_HEADER = struct.Struct("<II")  # entries sent, bytes of indices; then a float32 scale per tensor


def _encode_topk(accumulated: Tensors, codec: TopkCodec) -> tuple[np.ndarray, Tensors]:
    """The whole update in one uint8 array, and what the decoder will reconstruct of each tensor.

    One top-k across the model: the `fraction` largest entries of the whole update, wherever
    they are (a tensor whose update is larger sends more of it), each tensor's share quantized
    with its own scale. Layout: header (entries sent, bytes of indices), the scales in name order,
    the indices into the flattened model, the values."""
    keys, bounds = _layout(accumulated)
    flat = np.concatenate([accumulated[k].reshape(-1) for k in keys]) if keys else np.zeros(0, np.float32)
    k = min(flat.size, max(1, math.ceil(codec.fraction * flat.size))) if flat.size else 0
    idx = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :]) if k else np.zeros(0, np.int64)
    cuts = np.searchsorted(idx, bounds)
    q = np.zeros(idx.size, np.int8)
    scales = np.ones(len(keys), np.float32)
    sent = np.zeros_like(flat)
    for tensor, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        if hi > lo:
            q[lo:hi], scale = _quantize(flat[idx[lo:hi]], codec.levels)
            scales[tensor] = scale[0]
            sent[idx[lo:hi]] = _dequantize(q[lo:hi], scale)
    indices = _pack_indices(idx, codec)
    packed = _HEADER.pack(idx.size, len(indices)) + scales.astype("<f4").tobytes() + indices + _pack_values(q, codec)
    reconstructed = {key: sent[bounds[i] : bounds[i + 1]].reshape(accumulated[key].shape) for i, key in enumerate(keys)}
    return np.frombuffer(packed, np.uint8), reconstructed


def _decode_topk(packed: np.ndarray, reference: Tensors, codec: TopkCodec) -> Tensors:
    """The update's delta per tensor, checked against the model: MalformedUpdate otherwise."""
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise MalformedUpdate(
            f"array {TOPK_ARRAY_KEY!r} has dtype {packed.dtype} and {packed.ndim} dimensions, "
            "expected one dimension of uint8"
        )
    keys, bounds = _layout(reference)
    data = packed.tobytes()
    scales_end = _HEADER.size + 4 * len(keys)
    if len(data) < scales_end:
        raise MalformedUpdate(f"the top-k update has {len(data)} bytes, shorter than its header ({scales_end})")
    count, index_bytes = _HEADER.unpack_from(data)
    size = int(bounds[-1])
    if count > size:
        raise MalformedUpdate(f"the top-k update claims {count} entries, the model has {size}")
    values_start = scales_end + index_bytes
    expected = values_start + _values_size(count, codec)
    if len(data) != expected:
        raise MalformedUpdate(
            f"the top-k update has {len(data)} bytes; {count} entries of {codec.value_bits} bits with "
            f"{index_bytes} bytes of indices over {len(keys)} tensors make {expected}"
        )
    scales = np.frombuffer(data[_HEADER.size : scales_end], "<f4").astype(np.float32)
    idx = _unpack_indices(data[scales_end:values_start], codec, count, size)
    q = _unpack_values(data[values_start:], codec, count)
    cuts = np.searchsorted(idx, bounds)
    flat = np.zeros(size, np.float32)
    for tensor, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        if hi > lo:
            flat[idx[lo:hi]] = _dequantize(q[lo:hi], scales[tensor : tensor + 1])
    return {key: flat[bounds[i] : bounds[i + 1]].reshape(reference[key].shape) for i, key in enumerate(keys)}


def encode(
    local: Tensors,
    reference: Tensors,
    mode: Compression,
    codec: TopkCodec = TopkCodec(),
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
    if mode is Compression.INT8:
        encoded: Tensors = {}
        for key, d in delta.items():
            encoded[f"{key}::q"], encoded[f"{key}::scale"] = _quantize(d)
        return encoded, None
    accumulated = {}
    for key, d in delta.items():
        carried = residual.get(key) if residual else None
        accumulated[key] = d + carried if carried is not None and carried.shape == d.shape else d
    packed, sent = _encode_topk(accumulated, codec)
    return {TOPK_ARRAY_KEY: packed}, {key: accumulated[key] - sent[key] for key in accumulated}


def _expect(arrays: Tensors, key: str, dtypes: tuple[type, ...], shape: tuple[int, ...] | None) -> np.ndarray:
    value = arrays[key]
    if value.dtype.type not in dtypes:
        names = " or ".join(np.dtype(t).name for t in dtypes)
        raise MalformedUpdate(f"array {key!r} has dtype {value.dtype}, expected {names}")
    if shape is not None and value.shape != shape:
        raise MalformedUpdate(f"array {key!r} has shape {value.shape}, expected {shape}")
    return value


def _expected_keys(reference: Tensors, mode: Compression) -> set[str]:
    if mode is Compression.TOPK:
        return {TOPK_ARRAY_KEY}
    suffixes = {
        Compression.NONE: ("",),
        Compression.FP16: ("",),
        Compression.INT8: ("::q", "::scale"),
    }[mode]
    return {f"{key}{suffix}" for key in reference for suffix in suffixes}


def decode(encoded: Tensors, reference: Tensors, mode: Compression, codec: TopkCodec = TopkCodec()) -> Tensors:
    """Full float32 weights from what a node sent; MalformedUpdate if it does not fit the
    global model (names, dtypes, shapes, indices)."""
    expected = _expected_keys(reference, mode)
    missing, extra = sorted(expected - set(encoded)), sorted(set(encoded) - expected)
    if missing or extra:
        parts = [f"missing arrays {missing[:3]}" if missing else "", f"unexpected arrays {extra[:3]}" if extra else ""]
        raise MalformedUpdate(f"not a {mode} update of this model: " + "; ".join(p for p in parts if p))
    if mode is Compression.TOPK:
        delta = _decode_topk(encoded[TOPK_ARRAY_KEY], reference, codec)
        return {key: ref.astype(np.float32) + delta[key] for key, ref in reference.items()}
    weights: Tensors = {}
    for key, ref in reference.items():
        ref32 = ref.astype(np.float32)
        if mode is Compression.NONE:
            weights[key] = _expect(encoded, key, (np.float32,), ref.shape)
        elif mode is Compression.FP16:
            weights[key] = ref32 + _expect(encoded, key, (np.float16,), ref.shape).astype(np.float32)
        else:
            q = _expect(encoded, f"{key}::q", (np.int8,), ref.shape)
            rows = _rows(ref).shape[0]
            scale = _expect(encoded, f"{key}::scale", (np.float32,), (rows,) if ref.size else None)
            weights[key] = ref32 + _dequantize(q, scale) if ref.size else ref32
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
        TopkCodec.uplink(settings),
        residual,
    )
    if residual is not None:
        context.state[RESIDUAL_STATE_KEY] = to_record(residual)
    reply.content["arrays"] = to_record(encoded)
    reply.content[COMPRESSION_RECORD_KEY] = ConfigRecord({"mode": settings.compression.value})
    return reply
