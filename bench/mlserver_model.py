"""MLServer (Seldon) serving the benchmark's digits MLP (same weights) through a custom MLModel
runtime, for bench/serving.py. Runs in its own venv (.bench-venvs/mlserver: MLServer pins its
own FastAPI, Starlette and protobuf, which the workloads' environment cannot share).

    .bench-venvs/mlserver/bin/python bench/mlserver_model.py --weights W.pt --http-port N \
        --grpc-port G --metrics-port M [--max-batch-size 32 --max-batch-time-ms 2]

It answers with our server's two outputs (the probabilities and the label), so that every
server does the same work per request. Settings, each to compare like with like:
- parallel_workers 0: inference runs in the server's own process, on its event loop, as ours
  does. MLServer's default (1) sends every request or batch to a worker process over a pipe:
  on the one core both servers get, that is a second process and two IPC hops per request.
- adaptive batching is on when --max-batch-size > 1 (MLServer's max_batch_size and
  max_batch_time; it ignores a max_batch_time of 0, so batching needs a wait > 0): our
  server's batching row with the same size and wait is its pair.
- no access log (debug off; ours logs nothing per request) and no GZip middleware (the load
  asks for no compression; MLServer would still wrap every response); metrics stay on, as ours.
- every listener binds 127.0.0.1 (this machine's rule: loopback only); the gRPC one, which
  MLServer always starts, sits idle on its own port.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop
from mlserver import MLModel, MLServer
from mlserver.codecs import NumpyCodec
from mlserver.settings import ModelParameters, ModelSettings, Settings
from mlserver.types import InferenceRequest, InferenceResponse
from prometheus_client import Histogram

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.digits_mlp import load_digits_mlp, probabilities

# Rows per forward pass: the benchmark reads their mean off the metrics port, to show how large
# the adaptive batches grew (ours reports the same). In prometheus_client's default registry,
# the one MLServer's metrics port shows with parallel_workers 0 (mlserver.metrics.log() records
# into a registry of its own, shown only with parallel workers).
BATCH_ROWS = Histogram("bench_batch_rows", "rows per forward pass", buckets=(1, 2, 4, 8, 16, 32))


class DigitsMlp(MLModel):
    async def load(self) -> bool:
        self._model = load_digits_mlp(str(self.settings.parameters.uri))  # type: ignore[union-attr]
        self.ready = True
        return self.ready

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        BATCH_ROWS.observe(len(x))
        p = probabilities(self._model, x)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output("probabilities", p),
                NumpyCodec.encode_output("label", p.argmax(axis=1)),
            ],
        )


async def serve(args: argparse.Namespace) -> None:
    settings = Settings(
        host="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        parallel_workers=0,
        debug=False,
        gzip_enabled=False,
    )
    model = ModelSettings(
        name=args.model_name,
        implementation=DigitsMlp,
        parameters=ModelParameters(uri=args.weights),
        max_batch_size=args.max_batch_size,
        max_batch_time=args.max_batch_time_ms / 1000,
    )
    # MLServer installs its signal handlers on the running loop: build it inside.
    await MLServer(settings).start([model])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model-name", default="meridian")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=1, help="rows per forward pass at most; 1: no batching")
    parser.add_argument("--max-batch-time-ms", type=float, default=0.0, help="hold a partial batch this long")
    uvloop.run(serve(parser.parse_args()))
