"""Serving benchmark -> bench/results/serving.json (not a test).

1. Closed-loop load, side by side in one run: our regional server with micro-batching and
   without, MLServer (Seldon) with its adaptive batching set like ours (32 rows, 2 ms) and
   without, and the KServe SDK's model server (which has no batching of its own), all serving the
   same digits MLP (same weights, same two outputs) over the same V2 JSON requests; every pair
   of ours and a peer's, batching on or off on each side, is compared (`comparisons`), the
   summary quoting batching on both sides and off on both. Each server runs pinned to CPU 0;
   the load generator (raw asyncio HTTP/1.1 keep-alive, one connection per virtual user) runs
   in its own process pinned to CPU 1. Reported: req/s,
   p50/p99 latency, server CPU microseconds per request (utime+stime deltas of the server's
   /proc/<pid>/stat over the measured window), and the in-process forward throughput of the
   same model on one core as the ceiling. The batching server runs again with callers'
   authentication on (an API key; an RS256 OIDC token, its JWKS served from this process) and
   per-caller limits set too high to bite, so the cost of the front door is what differs; the
   same three paths are timed in-process too (CPU per request of the ASGI layer, with and
   without authentication, and the first sight of a token: its signature check).
2. Edge vs region: the edge server (int8) in front of the regional server (fp32) over the
   held-out digits: fraction answered at the edge, accuracy against the full model, and
   latency under the local stack's latency model (meridian/local/latency.py: AWS inter-region
   RTTs, a New York user, a New York edge site, the us-east-1 region).

    .venv-workloads/bin/python bench/serving.py [--duration-s 8] [--concurrency 32]
    .venv-workloads/bin/python bench/serving.py --device cuda|cpu [...]   # bench/serving_device.py

Our servers load signed artifacts from a registry written for the run; the peers load the same
weights (bench/digits_mlp.py). Each peer runs in its own venv, created on first use under
.bench-venvs/<name> (PEER_VENVS below: kserve pinned there, MLServer by
bench/requirements-mlserver.lock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance  # noqa: E402
from meridian.local.latency import METROS  # noqa: E402
from tests.workloads.serving.credentials import AUDIENCE, ISSUER, Issuer, jwks_server, write_api_keys  # noqa: E402
from workloads import contract  # noqa: E402
from workloads.processes import NotReady, wait_ready  # noqa: E402
from workloads.registry import ArtifactId, Variant, generate_keypair, publish  # noqa: E402
from workloads.registry.variants import quantize_int8  # noqa: E402
from workloads.serving.models import RegistryModelSource  # noqa: E402
from workloads.tasks import evaluate, load_task, train  # noqa: E402

KSERVE_VERSION = "0.21.0"
MLSERVER_VERSION = "1.7.1"
# The peers' own environments, each created on first use under .bench-venvs/<name> with these pip
# arguments; torch is the CPU build, which this machine's pip finds in its wheel store.
PEER_VENVS = {
    "kserve": [f"kserve=={KSERVE_VERSION}", "torch==2.13.0"],
    "mlserver": ["-r", str(ROOT / "bench" / "requirements-mlserver.lock")],
}
SERVER_CPU, LOADGEN_CPU = 0, 1
REGION = "bench"
MODEL = contract.MODEL_NAME
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_KEY_ID, BENCH_KEY_SECRET = "bench", "bench-secret-0123456789abcdef"
# Per-caller limits on the authenticated runs: the bucket is taken on every request, never empty.
UNBITING_LIMITS = json.dumps({"default": {"requestsPerSecond": 1e6, "burst": 10_000_000}})

# The closed-loop runs, each: (key, row name, (max batch size, max wait ms)[, callers]). Our
# server's deployed batching, 32 rows held up to 2 ms, is what MLServer's adaptive batching is set
# to (max_batch_size, max_batch_time): that pair is the batching-on-both comparison.
MATCHED_BATCHING = (32, 2.0)
NO_BATCHING = (1, 0.0)
OUR_RUNS = [
    ("meridian_batching", "meridian: batching (max 32, adaptive, no added wait)", (32, 0.0), "open"),
    ("meridian_batching_api_key", "meridian: batching (max 32, adaptive) + API key", (32, 0.0), "api_key"),
    ("meridian_batching_jwt", "meridian: batching (max 32, adaptive) + OIDC JWT (RS256)", (32, 0.0), "jwt_rs256"),
    ("meridian_batching_wait_2ms", "meridian: batching (max 32, wait up to 2 ms)", MATCHED_BATCHING, "open"),
    ("meridian_no_batching", "meridian: no batching (max batch 1)", NO_BATCHING, "open"),
]
MLSERVER_RUNS = [
    (
        "mlserver_batching_wait_2ms",
        f"mlserver {MLSERVER_VERSION}: adaptive batching (max_batch_size 32, max_batch_time 2 ms)",
        MATCHED_BATCHING,
    ),
    ("mlserver_no_batching", f"mlserver {MLSERVER_VERSION}: no batching", NO_BATCHING),
]
KSERVE = "kserve_no_batching"
# Every pair, batching on or off on each side: ours (rows) against each peer (columns).
COMPARED_OURS = ["meridian_batching_wait_2ms", "meridian_batching", "meridian_no_batching"]
COMPARED_PEERS = ["mlserver_batching_wait_2ms", "mlserver_no_batching", KSERVE]
# bench/mlserver_model.py's histogram of rows per forward pass (its BATCH_ROWS).
MLSERVER_BATCH_ROWS = "bench_batch_rows"


def caller_credentials(
    keys_file: Path, jwks_url: str, issuer: Issuer
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """name -> (the server's environment, the request headers) of each way in: open, API key, JWT."""
    write_api_keys(keys_file, {BENCH_KEY_ID: BENCH_KEY_SECRET})
    limits = {contract.ENV_RATE_LIMITS: UNBITING_LIMITS}
    oidc = {
        contract.ENV_OIDC_ISSUER: ISSUER,
        contract.ENV_OIDC_AUDIENCE: AUDIENCE,
        contract.ENV_OIDC_JWKS_URL: jwks_url,
    }
    return {
        "open": ({}, {}),
        "api_key": (
            {contract.ENV_API_KEYS_FILE: str(keys_file), **limits},
            {contract.API_KEY_HEADER: f"{BENCH_KEY_ID}.{BENCH_KEY_SECRET}"},
        ),
        # One token reused by every request, as a client does until it expires (an hour here).
        "jwt_rs256": (
            {**oidc, **limits},
            {"authorization": f"Bearer {issuer.token('bench', 'bench-user', lifetime_s=3600)}"},
        ),
    }


# ---- the model, as the federated pipeline would publish it ---------------------------------


def train_and_publish(registry: Path, keys: Path) -> tuple[dict[str, Any], torch.nn.Module, np.ndarray, np.ndarray]:
    task = load_task("digits")
    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = (
        np.asarray(part)
        for part in train_test_split(x, labels.astype(np.int64), test_size=0.25, stratify=labels, random_state=0)
    )
    torch.manual_seed(0)
    model = task.build_model()
    train(model, x_train, y_train, epochs=40, seed=0)
    model.eval()
    int8 = quantize_int8(model)
    signing_key, _ = generate_keypair(keys)
    for variant, module in ((Variant.FP32, model), (Variant.INT8, int8)):
        publish(
            module,
            task,
            registry.as_uri(),
            signing_key,
            artifact=ArtifactId(MODEL, "v1", REGION, variant),
            parent_version="v1",
        )
    info = {
        "task": "digits (scikit-learn 8x8 digits, 64 -> 128 -> 128 -> 10 MLP)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_examples": len(y_test),
        "fp32_test_accuracy": evaluate(model, x_test, y_test).accuracy,
        "int8_test_accuracy": evaluate(int8, x_test, y_test).accuracy,
    }
    return info, model, x_test, y_test


def forward_ceiling(registry: Path, trusted_key: Path, cache: Path) -> dict[str, float]:
    """Rows per CPU-second of the same predict call the server makes, in-process, one thread."""
    os.sched_setaffinity(0, {SERVER_CPU})
    torch.set_num_threads(1)
    loaded = RegistryModelSource(registry.as_uri(), MODEL, REGION, "fp32", trusted_key, cache).load("v1")
    result = {}
    for batch in (1, 32):
        x = np.random.default_rng(0).random((batch, 64), dtype=np.float32)
        for _ in range(200):
            loaded.predict(x)
        n, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < 2.0:
            loaded.predict(x)
            n += 1
        # Per CPU-second, so that other work on the machine does not lower the ceiling.
        result[f"rows_per_cpu_s_batch{batch}"] = n * batch / (time.process_time() - cpu_started)
    os.sched_setaffinity(0, {SERVER_CPU, LOADGEN_CPU})
    return result


def framework_overhead(
    registry: Path, trusted_key: Path, cache: Path, credentials: dict[str, tuple[dict[str, str], dict[str, str]]]
) -> dict[str, float]:
    """CPU per request of the ASGI layer alone, in-process (no sockets, no uvicorn): our thin
    app against the same validation, batching and encoding behind a Starlette route (which
    still lacks our metrics and error mapping). This is why the server is not on Starlette.
    Then the thin app with each way in of `credentials` (its gate: authentication, the
    caller's bucket, per-caller counting), and a token's first sight (signature check)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from workloads.serving.app import Role
    from workloads.serving.auth import OidcVerifier
    from workloads.serving.protocol import encode_infer_response, parse_infer_request
    from workloads.serving.runner import build_app
    from workloads.serving.settings import serving_parser, serving_settings

    os.sched_setaffinity(0, {SERVER_CPU})
    torch.set_num_threads(1)
    argv = [
        "--region",
        REGION,
        "--registry-url",
        registry.as_uri(),
        "--trusted-key",
        str(trusted_key),
        "--cache-dir",
        str(cache),
        "--stable",
        "v1",
        "--max-batch-wait-ms",
        "0",
    ]

    def thin_app(env: dict[str, str]) -> Any:
        saved = dict(os.environ)
        os.environ.update(env)  # the parser reads the contract's variables, as the server does
        try:
            return build_app(
                serving_settings(serving_parser("bench", "", "fp32").parse_args(argv)), server_name="bench"
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)

    thin = thin_app({})
    guarded = {name: (thin_app(env), headers) for name, (env, headers) in credentials.items() if env}

    async def infer(request: Request) -> Response:
        served = thin.router.pick(request.headers.get(contract.VERSION_HEADER))
        parsed = parse_infer_request(await request.body(), dict(request.headers), served.model.input_shape)
        body, _ = encode_infer_response(MODEL, served.name, parsed, await served.submit(parsed.x))
        return Response(body, media_type="application/json")

    starlette = Starlette(routes=[Route("/v2/models/{name}/infer", infer, methods=["POST"])])
    body = json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": [0.5] * 64}]}
    ).encode()
    path = f"/v2/models/{MODEL}/infer"
    plain = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "query_string": b"",
            "path": path,
            "raw_path": path.encode(),
            "headers": headers,
        }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def cost(app: Any, extra: dict[str, str] | None = None) -> float:
        headers = plain + [(k.encode(), v.encode()) for k, v in (extra or {}).items()]

        async def rounds(n: int) -> None:
            for _ in range(n):  # 32 concurrent requests, as in the closed loop
                await asyncio.gather(*(app(scope(headers), receive, send) for _ in range(32)))

        await rounds(200)
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            await rounds(300)
            best = min(best, (time.process_time() - started) / (300 * 32) * 1e6)
        return best

    async def first_sight(token: str) -> float:
        """CPU of verifying a token never seen before: a verifier that remembers nothing."""
        jwks_url = credentials["jwt_rs256"][0][contract.ENV_OIDC_JWKS_URL]
        verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_url, cache_size=0)
        verifier.refresh()
        started = time.process_time()
        for _ in range(2000):
            await verifier.caller(token)
        return (time.process_time() - started) / 2000 * 1e6

    async def gate_cost(app: Any, extra: dict[str, str]) -> float:
        """CPU per request of the gate alone: the credential, the caller's bucket, the counting."""
        headers = plain + [(k.encode(), v.encode()) for k, v in extra.items()]
        start, body_message = {"type": "http.response.start", "status": 200}, {"type": "http.response.body"}

        async def rounds(n: int) -> None:
            for _ in range(n):
                _, counted = await app.gate.admit(scope(headers), send)
                await counted(start)
                await counted(body_message)

        await rounds(2000)
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            await rounds(20_000)
            best = min(best, (time.process_time() - started) / 20_000 * 1e6)
        return best

    async def measure() -> dict[str, float]:
        apps = [thin, *(app for app, _ in guarded.values())]
        for app in apps:
            await app.startup()
            while not app.router.ready:  # noqa: ASYNC110  (readiness is a router property, with no event to await)
                await asyncio.sleep(0.01)
        result = {
            "thin_asgi_cpu_us_per_request": await cost(thin.listener(Role.PUBLIC)),
            "starlette_route_cpu_us_per_request": await cost(starlette),
        }
        for name, (app, headers) in guarded.items():
            result[f"thin_asgi_{name}_cpu_us_per_request"] = await cost(app.listener(Role.PUBLIC), headers)
            result[f"gate_alone_{name}_cpu_us_per_request"] = await gate_cost(app, headers)
        token = credentials["jwt_rs256"][1]["authorization"].removeprefix("Bearer ")
        result["jwt_first_sight_rs256_verify_cpu_us"] = await first_sight(token)
        for app in apps:
            await app.shutdown()
        return result

    result = asyncio.run(measure())
    os.sched_setaffinity(0, {SERVER_CPU, LOADGEN_CPU})
    return result


# ---- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server_process(
    command: list[str], port: int, env: dict[str, str] | None = None, cpu: int | None = SERVER_CPU
) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )
        try:
            try:
                wait_ready(process, f"http://127.0.0.1:{port}{contract.READINESS_PATH}", timeout=180)
            except NotReady as err:
                log.seek(0)
                raise RuntimeError(f"{command[:3]} {err}:\n{log.read().decode()[-3000:]}") from None
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def our_server(
    settings: dict[str, str],
    port: int,
    variant: str = "fp32",
    extra: list[str] | None = None,
    module: str = "workloads.server",
    cpu: int | None = SERVER_CPU,
    metrics_port: int | None = None,
):
    env = {
        contract.ENV_HTTP_PORT: str(port),
        contract.ENV_METRICS_PORT: str(metrics_port or free_port()),  # its own port, never the HTTP one
        contract.ENV_MODEL_VARIANT: variant,
        contract.ENV_STABLE_VERSION: "v1",
        **settings,
    }
    return server_process([sys.executable, "-m", module, "--torch-threads", "1", *(extra or [])], port, env, cpu)


def ensure_peer_venv(name: str) -> Path:
    """The Python of the peer server's own environment (PEER_VENVS), created if missing."""
    venv = ROOT / ".bench-venvs" / name
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_VENVS[name]], check=True)
        (venv / ".installed").touch()
    return python


# ---- load ------------------------------------------------------------------------------------


def v2_requests(x: np.ndarray, port: int, path: str, headers: dict[str, str]) -> list[bytes]:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = []
    for row in x[:64]:
        body = json.dumps(
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": row.tolist()}]}
        ).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        requests.append(head.encode() + body)
    return requests


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


async def _user(
    port: int,
    requests: list[bytes],
    offset: int,
    measure_from: float,
    stop_at: float,
    latencies: list[float],
    failures: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while (started := time.perf_counter()) < stop_at:
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                status = int(head[9:12])
            except (asyncio.IncompleteReadError, ConnectionError):  # the server closed: count it, reconnect
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if started >= measure_from:
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    failures.append(status)
    finally:
        writer.close()


async def _closed_loop(
    port: int, pid: int, requests: list[bytes], concurrency: int, warmup_s: float, duration_s: float
) -> dict[str, Any]:
    now = time.perf_counter()
    measure_from, stop_at = now + warmup_s, now + warmup_s + duration_s
    latencies: list[float] = []
    failures: list[int] = []
    users = [
        asyncio.create_task(_user(port, requests, i, measure_from, stop_at, latencies, failures))
        for i in range(concurrency)
    ]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_before, own_before, t_before = cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu_after, own_after, t_after = cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*users)
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failed": len(failures),
        "req_per_s": len(latencies) / (t_after - t_before),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "server_cpu_us_per_request": (cpu_after - cpu_before) / len(latencies) * 1e6,
        "server_cpu_utilization": (cpu_after - cpu_before) / (t_after - t_before),
        # Both well under 1.0 means neither process got its core: other work on the machine.
        "loadgen_cpu_utilization": (own_after - own_before) / (t_after - t_before),
    }


def loadgen_main(spec: str) -> None:
    """The load generator's own process, pinned to its own CPU."""
    args = json.loads(spec)
    os.sched_setaffinity(0, {LOADGEN_CPU})
    import uvloop

    x = np.load(args["inputs"])
    requests = v2_requests(x, args["port"], args["path"], args["headers"])
    result = uvloop.run(
        _closed_loop(args["port"], args["pid"], requests, args["concurrency"], args["warmup_s"], args["duration_s"])
    )
    print(json.dumps(result))


def closed_loop(
    port: int,
    pid: int,
    path: str,
    inputs: Path,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec = json.dumps(
        {
            "port": port,
            "pid": pid,
            "path": path,
            "headers": headers or {},
            "inputs": str(inputs),
            "concurrency": concurrency,
            "warmup_s": warmup_s,
            "duration_s": duration_s,
        }
    )
    done = subprocess.run(
        [sys.executable, __file__, "--loadgen", spec], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def mean_batch(metrics_port: int, histogram: str) -> float:
    """Mean rows per forward pass, from the server's Prometheus histogram of them."""
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}{contract.METRICS_PATH}").text
    total, count = (
        float(re.search(rf"^{histogram}_{part}(?:\{{[^}}]*\}})? (\S+)", metrics, re.MULTILINE).group(1))  # type: ignore[union-attr]
        for part in ("sum", "count")
    )
    return total / count


def batching(max_batch_size: int, max_wait_ms: float) -> dict[str, Any]:
    """A row's batching settings (None: one request per forward pass)."""
    return {"batching": {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms} if max_batch_size > 1 else None}


def compared(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Our row against a peer's: throughput in the closed loop, and per core (requests per second
    of server CPU: what one dedicated core would serve), as ours / theirs; the latencies beside."""
    return {
        "ours": ours["server"],
        "peer": peer["server"],
        "req_per_s_ratio": ours["req_per_s"] / peer["req_per_s"],
        "req_per_core_second_ratio": peer["server_cpu_us_per_request"] / ours["server_cpu_us_per_request"],
        **{f"{side}_{q}": row[q] for side, row in (("ours", ours), ("peer", peer)) for q in ("p50_ms", "p99_ms")},
    }


# ---- edge vs region --------------------------------------------------------------------------


def edge_vs_region(
    settings: dict[str, str], x: np.ndarray, y: np.ndarray, full_accuracy: float, threshold: float
) -> dict[str, Any]:
    user, edge_site, region_site = METROS["nyc"], METROS["nyc"], METROS["iad"]
    user_edge_ms, user_region_ms, edge_region_ms = (
        user.rtt_ms(edge_site),
        user.rtt_ms(region_site),
        edge_site.rtt_ms(region_site),
    )
    region_port, edge_port = free_port(), free_port()
    edge_settings = {
        **settings,
        contract.ENV_UPSTREAM_URL: f"http://127.0.0.1:{region_port}",
        contract.ENV_CONFIDENCE_THRESHOLD: str(threshold),
        contract.ENV_HTTP_PORT: str(edge_port),
    }
    rows = []
    with (
        our_server(settings, region_port, cpu=SERVER_CPU),
        our_server(edge_settings, edge_port, variant="int8", module="workloads.edge", cpu=LOADGEN_CPU),
        httpx.Client() as client,
    ):
        for row, label in zip(x, y, strict=True):
            body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": row.tolist()}]}
            started = time.perf_counter()
            edge = client.post(f"http://127.0.0.1:{edge_port}/v2/models/{MODEL}/infer", json=body).json()
            edge_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            region = client.post(f"http://127.0.0.1:{region_port}/v2/models/{MODEL}/infer", json=body).json()
            region_ms = (time.perf_counter() - started) * 1000
            local = edge["parameters"]["served_by"] == "edge"
            rows.append(
                {
                    "local": local,
                    "edge_correct": edge["outputs"][1]["data"][0] == label,
                    "region_correct": region["outputs"][1]["data"][0] == label,
                    # Modelled: the user's RTT to whoever answers, plus the edge->region hop when escalated.
                    "edge_path_ms": user_edge_ms + edge_ms + (0 if local else edge_region_ms),
                    "region_path_ms": user_region_ms + region_ms,
                }
            )
    local = np.array([r["local"] for r in rows])
    edge_accuracy = float(np.mean([r["edge_correct"] for r in rows]))
    region_accuracy = float(np.mean([r["region_correct"] for r in rows]))
    edge_ms = np.array([r["edge_path_ms"] for r in rows])
    region_ms = np.array([r["region_path_ms"] for r in rows])
    return {
        "examples": len(rows),
        "confidence_threshold": threshold,
        "edge_fraction": float(local.mean()),
        "cascade_accuracy": edge_accuracy,
        "full_model_accuracy_via_region": region_accuracy,
        "full_model_accuracy_in_process": full_accuracy,
        "accuracy_drop_points": (region_accuracy - edge_accuracy) * 100,
        "latency_model": {
            "source": "meridian/local/latency.py (AWS inter-region RTT table; facts.md: us-east-1<->eu-west-1 ~70-80 ms)",
            "user": "nyc",
            "edge_site": "nyc (Local Zone)",
            "region": "us-east-1 (iad)",
            "user_edge_rtt_ms": user_edge_ms,
            "user_region_rtt_ms": user_region_ms,
            "edge_region_rtt_ms": edge_region_ms,
        },
        "edge_path_ms": {
            "p50": float(np.percentile(edge_ms, 50)),
            "p99": float(np.percentile(edge_ms, 99)),
            "mean": float(edge_ms.mean()),
        },
        "region_only_ms": {
            "p50": float(np.percentile(region_ms, 50)),
            "p99": float(np.percentile(region_ms, 99)),
            "mean": float(region_ms.mean()),
        },
    }


# ---- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=8.0)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--edge-threshold", type=float, default=0.8, help="the stack config's default inference.edgeConfidenceThreshold"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serving.json")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 CPUs: the server on one, the load generator on the other")
    peers = {name: ensure_peer_venv(name) for name in PEER_VENVS}
    pressure_before, load_before = cpu_pressure(), os.getloadavg()
    issuer = Issuer()
    issuer.add_key("bench", "RS256")
    with tempfile.TemporaryDirectory() as tmp, jwks_server(issuer) as (jwks_url, _):
        work = Path(tmp)
        credentials = caller_credentials(work / "api-keys.json", jwks_url, issuer)
        (work / "registry").mkdir()
        model_info, model, x_test, y_test = train_and_publish(work / "registry", work / "keys")
        trusted_key = next((work / "keys").glob("*.pub"))
        np.save(work / "inputs.npy", x_test)
        torch.save(model.state_dict(), work / "weights.pt")
        settings = {
            contract.ENV_REGION: REGION,
            contract.ENV_REGISTRY_URL: (work / "registry").as_uri(),
            contract.ENV_TRUSTED_KEY: str(trusted_key),
            contract.ENV_CACHE_DIR: str(work / "cache"),
        }
        ceiling = forward_ceiling(work / "registry", trusted_key, work / "ceiling-cache")
        overhead = framework_overhead(work / "registry", trusted_key, work / "overhead-cache", credentials)
        print(json.dumps(overhead), flush=True)
        infer = f"/v2/models/{MODEL}/infer"
        load: dict[str, Any] = {
            "inputs": work / "inputs.npy",
            "concurrency": args.concurrency,
            "warmup_s": args.warmup_s,
            "duration_s": args.duration_s,
        }
        servers: dict[str, dict[str, Any]] = {}
        for key, name, (batch, wait_ms), way_in in OUR_RUNS:
            env, headers = credentials[way_in]
            port, metrics_port = free_port(), free_port()
            extra = ["--max-batch-size", str(batch), "--max-batch-wait-ms", str(wait_ms)]
            with our_server({**settings, **env}, port, extra=extra, metrics_port=metrics_port) as process:
                result = closed_loop(port, process.pid, infer, **load, headers=headers)
                result["mean_batch_rows"] = mean_batch(metrics_port, "meridian_inference_batch_size")
            servers[key] = {"server": name, "callers": way_in, **batching(batch, wait_ms), **result}
            print(json.dumps(servers[key]), flush=True)
        for key, name, (batch, wait_ms) in MLSERVER_RUNS:
            port, metrics_port = free_port(), free_port()
            command = [
                str(peers["mlserver"]),
                str(ROOT / "bench" / "mlserver_model.py"),
                *("--weights", str(work / "weights.pt"), "--model-name", MODEL),
                *("--http-port", str(port), "--grpc-port", str(free_port()), "--metrics-port", str(metrics_port)),
                *("--max-batch-size", str(batch), "--max-batch-time-ms", str(wait_ms)),
            ]
            with server_process(command, port) as process:
                result = closed_loop(port, process.pid, infer, **load)
                result["mean_batch_rows"] = mean_batch(metrics_port, MLSERVER_BATCH_ROWS)
            servers[key] = {"server": name, "callers": "open", **batching(batch, wait_ms), **result}
            print(json.dumps(servers[key]), flush=True)
        port = free_port()
        kserve_command = [
            str(peers["kserve"]),
            str(ROOT / "bench" / "kserve_model.py"),
            *("--weights", str(work / "weights.pt"), "--http_port", str(port), "--model_name_served", MODEL),
            *("--configure_logging", "false"),
        ]
        with server_process(kserve_command, port) as process:
            servers[KSERVE] = {
                "server": f"kserve {KSERVE_VERSION} ModelServer (same model)",
                "callers": "open",
                **batching(1, 0),
                "note": "the KServe SDK's model server has no batching of its own: KServe batches in the"
                " InferenceService's agent sidecar (spec.predictor.batcher), in front of the server",
                **closed_loop(port, process.pid, infer, **load),
            }
        print(json.dumps(servers[KSERVE]), flush=True)
        edge = edge_vs_region(settings, x_test, y_test, model_info["fp32_test_accuracy"], args.edge_threshold)
    ours, with_key, with_jwt = (
        servers["meridian_batching"],
        servers["meridian_batching_api_key"],
        servers["meridian_batching_jwt"],
    )
    kserve = servers[KSERVE]
    comparisons = {f"{o}_vs_{p}": compared(servers[o], servers[p]) for o in COMPARED_OURS for p in COMPARED_PEERS}
    batching_both = comparisons["meridian_batching_wait_2ms_vs_mlserver_batching_wait_2ms"]
    head = provenance(
        "serving",
        None,
        load_before,
        {"torch": torch.__version__, "kserve": KSERVE_VERSION, "mlserver": MLSERVER_VERSION},
    )
    results = {
        **head,
        "machine": {
            **head["machine"],
            "processor": _cpu_model(),
            "note": "shared 2-core machine: other work ran beside the benchmark",
            "cpu_pressure_before": pressure_before,
            "cpu_pressure_after": cpu_pressure(),
        },
        "load": {
            "kind": "closed loop, raw asyncio HTTP/1.1 keep-alive, V2 JSON, 1 row per request",
            "concurrency": args.concurrency,
            "warmup_s": args.warmup_s,
            "duration_s": args.duration_s,
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
        },
        "model": model_info,
        "forward_ceiling_one_core": ceiling,
        "asgi_layer_in_process": overhead,
        "servers": list(servers.values()),
        "comparisons": comparisons,
        "edge_vs_region": edge,
        "summary": {
            # Like with like: batching on both sides with the same settings (32 rows, 2 ms), then
            # off on both; per core: requests per second of server CPU (one dedicated core).
            "req_per_s_ratio_vs_mlserver": batching_both["req_per_s_ratio"],
            "req_per_core_second_ratio_vs_mlserver": batching_both["req_per_core_second_ratio"],
            "p99_ms": batching_both["ours_p99_ms"],
            "batching_server": batching_both["ours"],
            "mlserver_p99_ms": batching_both["peer_p99_ms"],
            **{
                f"{ratio}_vs_{peer}_no_batching": comparisons[f"meridian_no_batching_vs_{peer}_no_batching"][ratio]
                for peer in ("mlserver", "kserve")
                for ratio in ("req_per_s_ratio", "req_per_core_second_ratio")
            },
            # Our adaptive batching (no added wait) against KServe, which does not batch in its server.
            "req_per_s_ratio_batching_vs_kserve": ours["req_per_s"] / kserve["req_per_s"],
            "req_per_core_second_ratio_batching_vs_kserve": kserve["server_cpu_us_per_request"]
            / ours["server_cpu_us_per_request"],
            "server_cpu_us_per_request": ours["server_cpu_us_per_request"],  # the adaptive row, no added wait
            "edge_fraction": edge["edge_fraction"],
            "edge_accuracy_drop_points": edge["accuracy_drop_points"],
            # The front door: what authentication adds per request (in-process: the ASGI layer
            # alone, least noisy; end to end: the servers' CPU over the closed loop), and the
            # lead over KServe (open: no auth there) with it on.
            "auth": {
                "api_key_gate_alone_cpu_us_per_request": overhead["gate_alone_api_key_cpu_us_per_request"],
                "jwt_cached_gate_alone_cpu_us_per_request": overhead["gate_alone_jwt_rs256_cpu_us_per_request"],
                "api_key_cpu_us_per_request_in_process": overhead["thin_asgi_api_key_cpu_us_per_request"]
                - overhead["thin_asgi_cpu_us_per_request"],
                "jwt_cached_cpu_us_per_request_in_process": overhead["thin_asgi_jwt_rs256_cpu_us_per_request"]
                - overhead["thin_asgi_cpu_us_per_request"],
                "jwt_first_sight_rs256_verify_cpu_us": overhead["jwt_first_sight_rs256_verify_cpu_us"],
                "api_key_cpu_us_per_request_end_to_end": with_key["server_cpu_us_per_request"]
                - ours["server_cpu_us_per_request"],
                "jwt_cpu_us_per_request_end_to_end": with_jwt["server_cpu_us_per_request"]
                - ours["server_cpu_us_per_request"],
                "req_per_core_second_ratio_vs_kserve_api_key": kserve["server_cpu_us_per_request"]
                / with_key["server_cpu_us_per_request"],
                "req_per_core_second_ratio_vs_kserve_jwt": kserve["server_cpu_us_per_request"]
                / with_jwt["server_cpu_us_per_request"],
                "req_per_s_ratio_vs_kserve_api_key": with_key["req_per_s"] / kserve["req_per_s"],
                "req_per_s_ratio_vs_kserve_jwt": with_jwt["req_per_s"] / kserve["req_per_s"],
            },
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))


def cpu_pressure() -> str:
    """The kernel's CPU pressure (PSI): how much of the time runnable tasks waited for a CPU."""
    path = Path("/proc/pressure/cpu")
    return path.read_text().splitlines()[0] if path.exists() else "unavailable"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        loadgen_main(sys.argv[2])
    elif any(arg.split("=")[0] == "--device" for arg in sys.argv[1:]):  # the device sweep, its own flags
        from bench.serving_device import main as device_sweep

        device_sweep(sys.argv[1:])
    else:
        main()
