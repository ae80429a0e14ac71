"""The KServe SDK's model server serving the benchmark's digits MLP (same weights), for
bench/serving.py. Runs in its own venv (.bench-venvs/kserve: kserve pins a protobuf the
workloads' environment cannot share).

    .bench-venvs/kserve/bin/python bench/kserve_model.py --weights W.pt --http_port N

It answers with our server's two outputs (the probabilities and the label), so that every
server does the same work per request. Two changes from KServe's defaults, both to compare like
with like: no per-request logging (latency logging off and logging left unconfigured, so access
and trace records are dropped; our server logs nothing per request either), and it binds
127.0.0.1 instead of 0.0.0.0 (this machine's rule: loopback only).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

import kserve
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.digits_mlp import load_digits_mlp, probabilities


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
        self.model = load_digits_mlp(self._weights)
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        p = probabilities(self.model, payload.inputs[0].as_numpy())
        outputs = []
        for name, datatype, array in (("probabilities", "FP32", p), ("label", "INT64", p.argmax(axis=1))):
            output = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
            output.set_data_from_numpy(array, binary_data=False)
            outputs.append(output)
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or str(uuid.uuid4()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model_name_served", default="meridian")
    args, _ = parser.parse_known_args()
    uvicorn.Config = _LoopbackConfig  # KServe builds its uvicorn.Config through this name
    # With --configure_logging false (bench/serving.py passes it), Python drops INFO records
    # (access log, kserve.trace) at the level check.
    ModelServer(enable_grpc=False, enable_latency_logging=False, workers=1).start(
        [DigitsMlp(args.model_name_served, args.weights)]
    )
