"""The KServe SDK's model server serving the benchmark's digits MLP (same weights), for
bench/serving.py. Runs in its own venv (.bench-venvs/kserve: kserve pins a protobuf the
workloads' environment cannot share).

    .bench-venvs/kserve/bin/python bench/kserve_model.py --weights W.pt --http_port N

Two changes from KServe's defaults, both to compare like with like: no per-request logging
(latency logging off and logging left unconfigured, so access and trace records are dropped;
our server logs nothing per request either), and it binds 127.0.0.1 instead of 0.0.0.0 (this
machine's rule: loopback only).
"""

from __future__ import annotations

import argparse
import uuid

import kserve
import torch
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class _LoopbackConfig(uvicorn.Config):
    def __init__(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


class DigitsMlp(Model):
    def __init__(self, name: str, weights: str):
        super().__init__(name)
        self._weights = weights
        self.load()

    def load(self) -> bool:
        state = torch.load(self._weights, weights_only=True)
        shapes = [state[f"{i}.weight"].shape for i in (0, 2, 4)]
        self.model = torch.nn.Sequential(
            torch.nn.Linear(shapes[0][1], shapes[0][0]),
            torch.nn.ReLU(),
            torch.nn.Linear(shapes[1][1], shapes[1][0]),
            torch.nn.ReLU(),
            torch.nn.Linear(shapes[2][1], shapes[2][0]),
        )
        self.model.load_state_dict(state)
        self.model.eval()
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(torch.from_numpy(x)), dim=1).numpy()
        output = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32")
        output.set_data_from_numpy(probabilities, binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[output], response_id=payload.id or str(uuid.uuid4()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model_name_served", default="meridian")
    args, _ = parser.parse_known_args()
    torch.set_num_threads(1)
    uvicorn.Config = _LoopbackConfig  # KServe builds its uvicorn.Config through this name
    # With --configure_logging false (bench/serving.py passes it), Python drops INFO records
    # (access log, kserve.trace) at the level check.
    ModelServer(enable_grpc=False, enable_latency_logging=False, workers=1).start(
        [DigitsMlp(args.model_name_served, args.weights)]
    )
