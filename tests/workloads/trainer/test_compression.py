"""Update compression (fp16, int8, top-k in every codec): how much smaller each mode sends, and
how close it decodes."""

import struct
import zlib

import numpy as np
import pytest

from workloads.trainer.compression import MalformedUpdate, TopkCodec, decode, encode
from workloads.trainer.settings import Compression

RNG = np.random.default_rng(0)


def _model(scale=1.0):
    return {
        "0.weight": (RNG.standard_normal((64, 128)) * scale).astype(np.float32),
        "0.bias": (RNG.standard_normal(64) * scale).astype(np.float32),
        "1.weight": (RNG.standard_normal((10, 64)) * scale).astype(np.float32),
    }


def _trained(reference, step=0.01):
    return {k: v + (RNG.standard_normal(v.shape) * step).astype(np.float32) for k, v in reference.items()}


def _nbytes(tensors):
    return sum(v.nbytes for v in tensors.values())


def test_none_sends_the_weights_unchanged():
    reference = _model()
    local = _trained(reference)
    encoded, residual = encode(local, reference, Compression.NONE)
    decoded = decode(encoded, reference, Compression.NONE)
    assert residual is None
    for key in local:
        np.testing.assert_array_equal(decoded[key], local[key])


@pytest.mark.parametrize(
    ("mode", "min_ratio", "tolerance"), [(Compression.FP16, 1.99, 1e-3), (Compression.INT8, 3.8, 0.5 / 127)]
)
def test_dense_modes_shrink_the_update_and_decode_close_to_it(mode, min_ratio, tolerance):
    reference = _model()
    local = _trained(reference)
    encoded, _ = encode(local, reference, mode)
    decoded = decode(encoded, reference, mode)
    assert _nbytes(local) / _nbytes(encoded) >= min_ratio
    for key in local:
        delta = local[key] - reference[key]
        error = np.abs(decoded[key] - local[key]).max()
        assert error <= tolerance * np.abs(delta).max() + 1e-7


def test_int8_scales_each_row_on_its_own():
    reference = {"w": np.zeros((2, 4), np.float32)}
    local = {"w": np.array([[100.0, -50, 25, 0], [0.01, -0.02, 0.005, 0]], np.float32)}
    decoded = decode(encode(local, reference, Compression.INT8)[0], reference, Compression.INT8)
    # a per-tensor scale would round the whole small row to zero
    np.testing.assert_allclose(decoded["w"][1], local["w"][1], atol=0.02 / 254 + 1e-9)


CODECS = [
    TopkCodec(0.05, 8, "gaps"),
    TopkCodec(0.05, 8, "varint"),
    TopkCodec(0.05, 4, "varint"),
    TopkCodec(0.05, 4, "gaps"),
]


@pytest.mark.parametrize("codec", CODECS, ids=str)
def test_topk_sends_only_the_largest_fraction_of_the_model_within_half_a_quantization_step(codec):
    reference = _model()
    local = _trained(reference)
    encoded, residual = encode(local, reference, Compression.TOPK, codec)
    decoded = decode(encoded, reference, Compression.TOPK, codec)
    deltas = {key: local[key] - ref for key, ref in reference.items()}
    size = sum(ref.size for ref in reference.values())
    k = int(np.ceil(0.05 * size))
    threshold = np.sort(np.concatenate([np.abs(d).ravel() for d in deltas.values()]))[-k]
    assert sum(np.count_nonzero(decoded[key] - ref) for key, ref in reference.items()) == k
    for key, ref in reference.items():
        delta, sent = deltas[key], decoded[key] - ref
        assert np.all(np.abs(delta[sent != 0]) >= threshold)
        step = np.abs(delta[sent != 0]).max(initial=0) / codec.levels
        assert np.abs(sent - delta)[sent != 0].max(initial=0) <= step / 2 + 1e-7
        np.testing.assert_allclose(sent + residual[key], delta, atol=1e-6)
    assert _nbytes(local) / _nbytes(encoded) > 10


def test_topk_packs_the_whole_update_into_one_byte_array():
    """One array per message instead of three per tensor: each array costs its own framing."""
    reference = _model()
    encoded, _ = encode(_trained(reference), reference, Compression.TOPK, TopkCodec(0.05, 4))
    assert list(encoded) == ["topk"] and encoded["topk"].dtype == np.uint8 and encoded["topk"].ndim == 1


def test_one_threshold_across_the_model_lets_the_tensor_that_moved_most_send_most():
    reference = {"moved": np.zeros(1000, np.float32), "still": np.zeros(1000, np.float32)}
    local = {"moved": RNG.standard_normal(1000).astype(np.float32), "still": np.full(1000, 1e-4, np.float32)}
    codec = TopkCodec(0.01, 8)
    decoded = decode(encode(local, reference, Compression.TOPK, codec)[0], reference, Compression.TOPK, codec)
    assert np.count_nonzero(decoded["moved"]) == 20 and np.count_nonzero(decoded["still"]) == 0


def test_each_topk_technique_sends_fewer_bytes_for_the_same_entries():
    reference = {"w": np.zeros((1024, 1024), np.float32)}
    local = {"w": RNG.standard_normal((1024, 1024)).astype(np.float32)}
    sizes = [
        _nbytes(encode(local, reference, Compression.TOPK, codec)[0])
        for codec in (TopkCodec(0.01, 8, "gaps"), TopkCodec(0.01, 8, "varint"), TopkCodec(0.01, 4, "varint"))
    ]
    k = 0.01 * 1024 * 1024
    # fixed-width uint16 gaps + int8: 3 bytes an entry; varint+zlib: ~1.1 for the index; 4-bit: half a byte a value
    assert sizes[0] / k == pytest.approx(3.0, abs=0.01)
    assert sizes[1] / k < 2.3 and sizes[2] / k < 1.8


@pytest.mark.parametrize(("hot", "width"), [([3, 200], 1), ([3, 60_000], 2), ([3, 69_999], 4)])
def test_fixed_width_gaps_use_the_smallest_integer_type_that_fits(hot, width):
    reference = {"w": np.zeros(70_000, np.float32)}
    local = {"w": np.zeros(70_000, np.float32)}
    local["w"][hot] = [1.0, -2.0]
    codec = TopkCodec(2 / 70_000, 8, "gaps")
    encoded, _ = encode(local, reference, Compression.TOPK, codec)
    # header 8 bytes, one scale, the width byte, two gaps, two int8 values
    assert encoded["topk"][12] == width and encoded["topk"].size == 8 + 4 + 1 + 2 * width + 2
    np.testing.assert_allclose(decode(encoded, reference, Compression.TOPK, codec)["w"], local["w"], atol=2 / 127)


@pytest.mark.parametrize("gap", [0, 127, 128, 16_383, 16_384, 2**21 - 1, 2**21])
def test_varint_indices_round_trip_across_byte_lengths(gap):
    size = gap + 2
    reference = {"w": np.zeros(size, np.float32)}
    local = {"w": np.zeros(size, np.float32)}
    local["w"][[gap, gap + 1]] = [1.0, -1.0]
    encoded, _ = encode(local, reference, Compression.TOPK, TopkCodec(2 / size, 8, "varint"))
    decoded = decode(encoded, reference, Compression.TOPK, TopkCodec(2 / size, 8, "varint"))["w"]
    assert np.flatnonzero(decoded).tolist() == [gap, gap + 1]


@pytest.mark.parametrize("bits", [8, 4])
def test_error_feedback_eventually_delivers_everything_that_was_held_back(bits):
    """Over rounds, what the server received plus the node's residual equals the sum of the
    node's true updates: nothing is lost, only delayed."""
    reference = {"w": np.zeros(200, np.float32)}
    true_total = np.zeros(200, np.float32)
    received_total = np.zeros(200, np.float32)
    residual = None
    for round_ in range(30):
        delta = np.random.default_rng(round_).standard_normal(200).astype(np.float32) * 0.1
        true_total += delta
        encoded, residual = encode({"w": delta}, reference, Compression.TOPK, TopkCodec(0.05, bits), residual)
        received_total += decode(encoded, reference, Compression.TOPK, TopkCodec(0.05, bits))["w"]
    np.testing.assert_allclose(received_total + residual["w"], true_total, atol=1e-4)
    # and most of the mass did arrive: the residual stays small against the total
    assert np.linalg.norm(residual["w"]) < 0.5 * np.linalg.norm(true_total)


def test_a_small_persistent_update_is_sent_once_it_has_accumulated():
    reference = {"w": np.zeros(100, np.float32)}
    delta = np.full(100, 0.001, np.float32)
    delta[0] = 1.0  # always the largest this round
    residual, first_round_hits = None, None
    for round_ in range(5):
        codec = TopkCodec(0.01, 8, "gaps")
        encoded, residual = encode({"w": delta}, reference, Compression.TOPK, codec, residual)
        if round_ == 0:
            first_round_hits = np.flatnonzero(decode(encoded, reference, Compression.TOPK, codec)["w"]).tolist()
    assert first_round_hits == [0]
    assert residual["w"][0] == pytest.approx(0.0, abs=1e-6)
    assert residual["w"][1] == pytest.approx(0.005, rel=1e-3)  # held back, still owed


@pytest.mark.parametrize(
    ("mode", "tamper", "message"),
    [
        (Compression.INT8, lambda e: e.pop("0.bias::scale"), "missing arrays"),
        (Compression.NONE, lambda e: e.update(extra=np.zeros(1, np.float32)), "unexpected arrays"),
        (
            Compression.INT8,
            lambda e: e.update({"0.bias::q": e["0.bias::q"].astype(np.int16)}),
            "dtype int16, expected int8",
        ),
        (Compression.FP16, lambda e: e.update({"0.bias": e["0.bias"][:10]}), r"shape \(10,\), expected \(64,\)"),
    ],
)
def test_an_update_that_does_not_fit_the_model_is_refused_with_the_reason(mode, tamper, message):
    reference = _model()
    encoded, _ = encode(_trained(reference), reference, mode)
    tamper(encoded)
    with pytest.raises(MalformedUpdate, match=message):
        decode(encoded, reference, mode)


def _zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def _forged(count: int, indices: bytes, values: bytes, tensors: int = 3) -> np.ndarray:
    """A packed top-k update as a hostile node could send it: header, scales, indices, values."""
    data = struct.pack("<II", count, len(indices)) + np.ones(tensors, "<f4").tobytes() + indices + values
    return np.frombuffer(data, np.uint8)


MODEL_SIZE = 64 * 128 + 64 + 10 * 64


@pytest.mark.parametrize(
    ("codec", "forged", "message"),
    [
        (TopkCodec(0.05), lambda e: e.view(np.int8), "expected one dimension of uint8"),
        (TopkCodec(0.05), lambda e: e[:11], "shorter than its header"),
        (TopkCodec(0.05), lambda e: _forged(MODEL_SIZE + 1, b"", b""), "claims 8897 entries, the model has 8896"),
        (TopkCodec(0.05), lambda e: np.append(e, np.uint8(0)), "make"),
        (TopkCodec(0.05), lambda e: e[:-1], "make"),
        (TopkCodec(0.05), lambda e: _forged(1, bytes(20), b"\x01", tensors=2), "make"),
        (TopkCodec(0.05), lambda e: _forged(1, _zlib(bytes([200])), b"\x01"), "inside a varint"),
        (TopkCodec(0.05), lambda e: _forged(1, _zlib(bytes([128 | 0, 70])), b"\x01"), "inside a model of 8896"),
        (TopkCodec(0.05), lambda e: _forged(2, _zlib(bytes([1, 0])), b"\x01\x01"), "distinct"),
        (TopkCodec(0.05), lambda e: _forged(3, _zlib(bytes([1, 2])), b"\x01" * 3), "not 3 distinct"),
        (TopkCodec(0.05), lambda e: _forged(1, _zlib(bytes(400)), b"\x01"), "inflate past"),
        (TopkCodec(0.05), lambda e: _forged(1, _zlib(b"\x80" * 6 + b"\x01"), b"\x01"), "longer than 5 bytes"),
        (TopkCodec(0.05), lambda e: _forged(1, bytes(range(9)), b"\x01"), "not zlib data"),
        (TopkCodec(0.05, 8, "gaps"), lambda e: _forged(1, bytes([3, 0, 0, 1]), b"\x01"), "fixed-width"),
        (TopkCodec(0.05, 8, "gaps"), lambda e: _forged(2, bytes([1, 5]), b"\x01\x01"), "fixed-width"),
        (TopkCodec(0.05, 4), lambda e: _forged(2, _zlib(bytes([1, 2])), b"\x09"), "outside -7..7"),
    ],
)
def test_a_topk_update_that_does_not_fit_the_model_is_refused_with_the_reason(codec, forged, message):
    reference = _model()
    encoded, _ = encode(_trained(reference), reference, Compression.TOPK, codec)
    with pytest.raises(MalformedUpdate, match=message):
        decode({"topk": forged(encoded["topk"])}, reference, Compression.TOPK, codec)


def test_a_topk_update_in_per_tensor_arrays_is_refused():
    reference = _model()
    with pytest.raises(MalformedUpdate, match="not a topk update of this model: missing arrays"):
        decode({"0.bias::index": np.zeros(1, np.uint8)}, reference, Compression.TOPK)


def test_an_update_sent_in_another_mode_is_refused():
    reference = _model()
    encoded, _ = encode(_trained(reference), reference, Compression.INT8)
    with pytest.raises(MalformedUpdate, match="not a topk update"):
        decode(encoded, reference, Compression.TOPK)


@pytest.mark.parametrize("mode", list(Compression))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_survive_encoding_so_the_server_can_reject_them(mode, bad):
    reference = _model()
    local = _trained(reference)
    local["0.weight"][3, 5] = bad
    decoded = decode(encode(local, reference, mode, TopkCodec(0.05))[0], reference, mode, TopkCodec(0.05))
    assert not np.isfinite(decoded["0.weight"]).all()
