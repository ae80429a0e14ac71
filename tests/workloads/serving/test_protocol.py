"""V2 request validation and response encoding, without a server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workloads.serving.protocol import (
    HEADER_LENGTH,
    InferError,
    encode_infer_response,
    parse_infer_request,
)

SHAPE = (64,)
X = np.arange(128, dtype=np.float32).reshape(2, 64) / 128


def body(**tensor_overrides: object) -> bytes:
    tensor = {"name": "input", "datatype": "FP32", "shape": [2, 64], "data": X.ravel().tolist()}
    tensor.update(tensor_overrides)
    return json.dumps({"inputs": [tensor]}).encode()


def test_a_flat_json_tensor_becomes_a_float32_array_of_the_declared_shape() -> None:
    request = parse_infer_request(body(), {}, SHAPE)
    assert request.x.dtype == np.float32 and request.x.shape == (2, 64)
    np.testing.assert_array_equal(request.x, X)


def test_nested_rows_and_integer_values_are_accepted() -> None:
    request = parse_infer_request(body(data=[[1] * 64, [0] * 64]), {}, SHAPE)
    assert request.x.sum() == 64


def test_binary_tensor_extension_input_is_read_after_the_json_header() -> None:
    header = json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 64], "parameters": {"binary_data_size": 512}}]}
    ).encode()
    request = parse_infer_request(header + X.tobytes(), {HEADER_LENGTH: str(len(header))}, SHAPE)
    np.testing.assert_array_equal(request.x, X)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100_000, "depth limit exceeded"),
        (json.dumps({"inputs": []}).encode(), "exactly one tensor"),
        (body(name="pixels"), "unknown input 'pixels'"),
        (body(datatype="INT64"), "datatype is 'INT64'"),
        (body(shape=[2, 63]), "has shape [2, 63]"),
        (body(shape=[0, 64], data=[]), "has shape [0, 64]"),
        (body(shape=[2, True]), "list of integers"),
        (body(data=X.ravel().tolist()[:-1]), "has 127 values"),
        (body(data=["1.0"] * 128), "only numbers"),
        (body(data=[[1.0] * 64, [1.0] * 3]), "ragged"),
        (body(data={"a": 1}), "JSON array"),
        (body(data=[1e39] * 128), "NaN or infinite"),
        (body(data=[10**400] * 128), "number is infinity"),
        (body(parameters=[1]), "parameters must be a JSON object"),
        (body(parameters={"binary_data_size": 7}), "binary_data_size is 7"),
    ],
)
def test_malformed_requests_are_refused_with_400_naming_the_problem(raw: bytes, message: str) -> None:
    with pytest.raises(InferError) as refused:
        parse_infer_request(raw, {}, SHAPE)
    assert refused.value.status == 400
    assert message in refused.value.message


def test_json_nan_and_infinity_literals_are_refused() -> None:
    for literal in (b"NaN,", b"-Infinity,"):
        with pytest.raises(InferError, match="not valid JSON") as refused:
            parse_infer_request(body().replace(b"0.0,", literal, 1), {}, SHAPE)
        assert refused.value.status == 400


def test_a_header_length_beyond_the_body_is_refused() -> None:
    with pytest.raises(InferError, match=HEADER_LENGTH):
        parse_infer_request(body(), {HEADER_LENGTH: "999999"}, SHAPE)


def test_unknown_requested_outputs_are_refused() -> None:
    raw = json.loads(body())
    raw["outputs"] = [{"name": "logits"}]
    with pytest.raises(InferError, match="unknown output 'logits'"):
        parse_infer_request(json.dumps(raw).encode(), {}, SHAPE)


def test_response_holds_probabilities_and_labels_as_json_by_default() -> None:
    request = parse_infer_request(body(), {}, SHAPE)
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    raw, headers = encode_infer_response("m", "v1", request, probabilities, {"served_by": "edge"})
    response = json.loads(raw)
    assert headers == {"content-type": "application/json"}
    assert response["model_version"] == "v1" and response["parameters"] == {"served_by": "edge"}
    outputs = {o["name"]: o for o in response["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]}
    assert outputs["probabilities"]["shape"] == [2, 2]


def test_binary_outputs_follow_the_json_header() -> None:
    raw_request = json.loads(body())
    raw_request["parameters"] = {"binary_data_output": True}
    request = parse_infer_request(json.dumps(raw_request).encode(), {}, SHAPE)
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    raw, headers = encode_infer_response("m", "v1", request, probabilities)
    split = int(headers[HEADER_LENGTH])
    header = json.loads(raw[:split])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [16, 16]
    np.testing.assert_array_equal(np.frombuffer(raw[split : split + 16], "<f4").reshape(2, 2), probabilities)
    np.testing.assert_array_equal(np.frombuffer(raw[split + 16 :], "<i8"), [1, 0])
