"""Open Inference Protocol (KServe V2) tensors over REST: parse and validate one request, encode
one response.

Every request is validated here, on its own, before it can join a batch: whatever a client
sends, the result is either a well-formed float32 array of the model's input shape or an
`InferError` with a status and a message naming the problem. The binary tensor extension
(what `tritonclient.http` sends by default) is supported both ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

INPUT_NAME = "input"
PROBABILITIES = "probabilities"  # FP32 (batch, classes): softmax of the logits
LABEL = "label"  # INT64 (batch,): argmax class
OUTPUT_NAMES = (PROBABILITIES, LABEL)
HEADER_LENGTH = "inference-header-content-length"  # the binary tensor extension's header


class InferError(Exception):
    """A request the server refuses: `status` is the HTTP code, the message goes in V2's
    `{"error": "..."}` body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> InferError:
    return InferError(400, message)


@dataclass(frozen=True)
class InferRequest:
    """A validated inference request: `x` is float32 (rows, *input_shape), C-contiguous."""

    x: np.ndarray
    request_id: str | None
    outputs: tuple[tuple[str, bool], ...]  # (output name, as binary), in the requested order
    parameters: dict[str, Any]
    caller: str | None = None  # who asked, as admitted by the listener (an edge forwards it)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        # orjson: ~10x faster than the json module here, and it refuses NaN/Infinity literals,
        # invalid UTF-8 and nesting deeper than 1024 by itself.
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise bad_request(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _header_length(headers: dict[str, str], body_size: int) -> int | None:
    raw = headers.get(HEADER_LENGTH)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > body_size:
        raise bad_request(f"{HEADER_LENGTH} must be an integer between 0 and the body size ({body_size}), got {raw!r}")
    return int(raw)


def _shape(value: object, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    expected = f"[-1, {', '.join(map(str, input_shape))}]"
    if not isinstance(value, list) or not all(type(d) is int for d in value):
        raise bad_request(f"input '{INPUT_NAME}' shape must be a list of integers {expected}")
    shape = tuple(value)
    if len(shape) != 1 + len(input_shape) or shape[1:] != input_shape or shape[0] < 1:
        raise bad_request(f"input '{INPUT_NAME}' has shape {list(shape)}; the model takes {expected}")
    return shape


def _from_json_data(data: object, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(data, list):
        raise bad_request(f"input '{INPUT_NAME}' data must be a JSON array of numbers")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise bad_request(f"input '{INPUT_NAME}' data is ragged or not all numbers") from None
    if array.dtype.kind not in "iuf":
        raise bad_request(f"input '{INPUT_NAME}' data must hold only numbers (FP32)")
    if array.size != math.prod(shape):
        raise bad_request(f"input '{INPUT_NAME}' has {array.size} values; shape {list(shape)} needs {math.prod(shape)}")
    with np.errstate(over="ignore"):  # overflow to inf is reported below as non-finite
        return array.astype(np.float32).reshape(shape)


def _from_binary(size: object, binary: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    needed = math.prod(shape) * 4
    if type(size) is not int or size != needed:
        raise bad_request(f"input '{INPUT_NAME}' binary_data_size is {size!r}; FP32 shape {list(shape)} needs {needed}")
    if size > len(binary):
        raise bad_request(f"input '{INPUT_NAME}' binary data is truncated")
    return np.frombuffer(binary[:size], dtype="<f4").astype(np.float32).reshape(shape)


def _requested_outputs(request: dict[str, Any], parameters: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    all_binary = parameters.get("binary_data_output", False)
    if not isinstance(all_binary, bool):
        raise bad_request("parameter binary_data_output must be true or false")
    outputs = request.get("outputs")
    if outputs is None:
        return tuple((name, all_binary) for name in OUTPUT_NAMES)
    if not isinstance(outputs, list) or not outputs:
        raise bad_request('outputs must be a non-empty list of {"name": ...} objects')
    chosen: list[tuple[str, bool]] = []
    for output in outputs:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUT_NAMES:
            raise bad_request(f"unknown output {name!r}; the model has {', '.join(OUTPUT_NAMES)}")
        output_parameters = output.get("parameters") or {}
        binary = output_parameters.get("binary_data", all_binary) if isinstance(output_parameters, dict) else None
        if not isinstance(binary, bool):
            raise bad_request(f"output '{name}' parameters must be an object; binary_data true or false")
        chosen.append((name, binary))
    return tuple(chosen)


def parse_infer_request(body: bytes, headers: dict[str, str], input_shape: tuple[int, ...]) -> InferRequest:
    """Validate one V2 inference request body, whatever its Content-Type said."""
    header_length = _header_length(headers, len(body))
    json_part = body if header_length is None else body[:header_length]
    binary = memoryview(body)[header_length:] if header_length is not None else memoryview(b"")
    request = _json_object(json_part, "request body")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("id must be a string")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise bad_request("parameters must be a JSON object")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise bad_request(f"inputs must be a list holding exactly one tensor, '{INPUT_NAME}'")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise bad_request(f"unknown input {tensor.get('name')!r}; the model takes '{INPUT_NAME}'")
    if tensor.get("datatype") != "FP32":
        raise bad_request(f"input '{INPUT_NAME}' datatype is {tensor.get('datatype')!r}; the model takes FP32")
    shape = _shape(tensor.get("shape"), input_shape)
    tensor_parameters = tensor.get("parameters") or {}
    if not isinstance(tensor_parameters, dict):
        raise bad_request(f"input '{INPUT_NAME}' parameters must be a JSON object")
    if "binary_data_size" in tensor_parameters:
        x = _from_binary(tensor_parameters["binary_data_size"], binary, shape)
    else:
        x = _from_json_data(tensor.get("data"), shape)
    if not np.isfinite(x).all():
        raise bad_request(f"input '{INPUT_NAME}' holds NaN or infinite values (after FP32 conversion)")
    return InferRequest(
        x=x, request_id=request_id, outputs=_requested_outputs(request, parameters), parameters=parameters
    )


def encode_infer_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    probabilities: np.ndarray,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The V2 response body and its extra headers (binary outputs follow the JSON header)."""
    tensors = {
        PROBABILITIES: ("FP32", probabilities.astype("<f4", copy=False)),
        LABEL: ("INT64", probabilities.argmax(axis=1).astype("<i8")),
    }
    outputs = []
    binaries: list[bytes] = []
    for name, binary in request.outputs:
        datatype, array = tensors[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            binaries.append(raw)
        else:
            entry["data"] = array.ravel()
        outputs.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request.request_id is not None:
        response["id"] = request.request_id
    if parameters:
        response["parameters"] = parameters
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binaries:
        return header, {"content-type": "application/json"}
    return header + b"".join(binaries), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def encode_binary_request(x: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """A V2 request for `x` in the binary tensor extension both ways (the edge escalates with
    it): the input's raw little-endian FP32 bytes after the JSON header, and the probabilities
    asked back as raw bytes. Its body and headers."""
    raw = x.astype("<f4", copy=False).tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "datatype": "FP32",
                    "shape": list(x.shape),
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": PROBABILITIES, "parameters": {"binary_data": True}}],
        }
    )
    return header + raw, {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}


_DTYPES = {"FP32": "<f4", "INT64": "<i8"}


def decode_infer_response(body: bytes, header_length: str | None, name: str) -> tuple[dict[str, Any], np.ndarray]:
    """A V2 response's JSON header and its output `name` as an array of the declared shape,
    whether that output came as JSON data or binary (after the header, in output order).
    Raises ValueError, KeyError or TypeError on a malformed response."""
    split = len(body) if header_length is None else int(header_length)
    response = orjson.loads(body[:split])
    offset = split
    for output in response["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if output["name"] == name:
            dtype = _DTYPES[output["datatype"]]
            if size is None:
                array = np.asarray(output["data"], dtype=dtype)
            else:
                if offset + size > len(body):
                    raise ValueError(f"output '{name}' binary data is truncated")
                array = np.frombuffer(body, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset)
            return response, array.reshape(output["shape"])
        offset += size or 0
    raise KeyError(f"no output '{name}' in the response")


def encode_json_request(x: np.ndarray, request_id: str | None = None) -> bytes:
    """A plain V2 JSON request for `x` (the edge uses it to escalate to its region)."""
    request: dict[str, Any] = {
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": list(x.shape), "data": x.ravel()}],
        "outputs": [{"name": PROBABILITIES}],
    }
    if request_id is not None:
        request["id"] = request_id
    return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)
