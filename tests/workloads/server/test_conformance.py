"""The regional server against the stock clients, over a real loopback socket:
`tritonclient.http` (binary tensors by default, and JSON) and a plain V2 JSON client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import torch
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.workloads.serving.support import MODEL, Registry, app_for, digits, infer_body, make_registry, serving
from workloads.contract import METRICS_PATH

X, _ = digits()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1, "v2": 2})


@pytest.fixture(scope="module")
def url(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = app_for(registry, tmp_path_factory.mktemp("cache"), stable="v1", candidate="v2", candidate_weight=0)
    with serving(app) as url:
        yield url


@pytest.fixture
def client(url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    yield client
    client.close()


def expected_labels(registry: Registry, seed: int, x: np.ndarray) -> list[int]:
    with torch.inference_mode():
        return registry.model(seed)(torch.from_numpy(x)).argmax(1).tolist()


def test_tritonclient_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "v2")
    assert not client.is_model_ready("other")
    assert client.get_server_metadata()["name"] == "meridian-test"
    metadata = client.get_model_metadata(MODEL)
    assert metadata["versions"] == ["v1", "v2"]
    assert metadata["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 64]}


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_tritonclient_infer(client: triton.InferenceServerClient, registry: Registry, binary: bool) -> None:
    x = X[:7]
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="abc")
    assert result.get_response()["id"] == "abc"
    assert result.as_numpy("label").tolist() == expected_labels(registry, 1, x)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (7, 10) and probabilities.dtype == np.float32
    # No outputs requested: tritonclient asks for every output in binary.
    default = client.infer(MODEL, [tensor], model_version="v2")
    assert default.get_response()["model_version"] == "v2"
    assert default.as_numpy("label").tolist() == expected_labels(registry, 2, x)


def test_tritonclient_sees_v2_errors_with_their_status(client: triton.InferenceServerClient) -> None:
    wrong = triton.InferInput("input", [1, 32], "FP32")
    wrong.set_data_from_numpy(X[:1, :32])
    with pytest.raises(InferenceServerException) as bad:
        client.infer(MODEL, [wrong])
    assert bad.value.status() == "400" and "has shape [1, 32]" in bad.value.message()
    ok = triton.InferInput("input", [1, 64], "FP32")
    ok.set_data_from_numpy(X[:1])
    with pytest.raises(InferenceServerException) as unknown:
        client.infer(MODEL, [ok], model_version="v9")
    assert unknown.value.status() == "404"


def test_plain_v2_json_client(url: str, registry: Registry) -> None:
    x = X[10:13]
    with httpx.Client(base_url=url) as client:
        assert client.get("/v2/health/live").status_code == 200
        response = client.post(f"/v2/models/{MODEL}/infer", json=infer_body(x))
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        assert outputs["label"]["data"] == expected_labels(registry, 1, x)
        error = client.post(f"/v2/models/{MODEL}/infer", content=b"{}")
        assert error.status_code == 400 and "exactly one tensor" in error.json()["error"]
        assert client.get(METRICS_PATH).status_code == 404  # metrics have their own port
