"""The serving device sweep -> bench/results/serving-<device>.json (not a test).

    .venv-workloads/bin/python bench/serving.py --device cuda   # on a machine with an NVIDIA GPU
    .venv-workloads/bin/python bench/serving.py --device cpu    # the same sweep on CPU

Our regional server (`python -m workloads.server`, the digits MLP as published: signed
artifacts from a registry written for the run) on the device, once per forward path (in the
device's worker thread, or on the event loop: workloads/serving/devices.py) and max batch size,
under the closed loop of bench/serving.py (raw asyncio HTTP/1.1 keep-alive, one connection per
virtual user, 1 row per V2 JSON request, the load generator pinned to its own CPU) at each
concurrency. Per point: req/s, p50/p99 latency, mean rows per forward pass, server CPU per
request, and on CUDA the GPU's utilisation (nvidia-smi's `utilization.gpu`, the share of time a
kernel was running, sampled every 100 ms over the measured window). In-process, on the server's
CPUs: the forward pass alone at each batch size on the device, and the thread hop (one row's
forward called on the loop against the same forward through the worker thread), which is why
the CPU default keeps the forward on the loop.

The server runs on `--server-cpus` (default: CPU 0 on CPU, as in bench/serving.py, so numbers
are per core; CPUs 0 and 2 on CUDA, one for the loop and one for the worker thread, which the
regional server's pod has: 2 CPUs). `--device cuda` needs a CUDA build of torch that sees a GPU
and stops with a message saying what is missing otherwise; `--device cpu` hides any GPU from
the server (CUDA_VISIBLE_DEVICES=""). The server reports its model's device in its metadata,
and the sweep stops if it is not the one asked for.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
import uvloop

from bench.provenance import provenance
from bench.serving import LOADGEN_CPU, closed_loop, free_port, server_process
from workloads import contract
from workloads.registry import ArtifactId, Variant, generate_keypair, publish
from workloads.serving.devices import ForwardWorker
from workloads.serving.models import LoadedModel, RegistryModelSource
from workloads.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
REGION = "bench"
MODEL = contract.MODEL_NAME
DEFAULT_SERVER_CPUS = {"cpu": "0", "cuda": "0,2"}
DEFAULT_BATCH_SIZES = {"cpu": "1,8,32,128", "cuda": "1,8,32,128,512"}
DEFAULT_CONCURRENCY = {"cpu": "1,8,32,128", "cuda": "1,8,32,128,512"}
GPU_SAMPLE_MS = 100
P99_BUDGET_MS = 10.0  # the latency bound for the serving headline
# Starts the server pinned to its CPUs from its first instruction, so every thread it starts
# (the loop, torch's, the forward worker) inherits them.
PINNED_SERVER = (
    "import os, runpy, sys; os.sched_setaffinity(0, {{{cpus}}}); "
    "runpy.run_module('workloads.server', run_name='__main__', alter_sys=True)"
)


def cpu_list(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{raw!r}: give one or more non-negative integers")
    return values


def positive_list(raw: str) -> list[int]:
    values = cpu_list(raw)
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r}: every value must be >= 1")
    return values


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/serving.py --device", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), required=True)
    parser.add_argument("--batch-sizes", type=positive_list, help="max batch sizes to sweep (default: per device)")
    parser.add_argument("--concurrency", type=positive_list, help="virtual users to sweep (default: per device)")
    parser.add_argument(
        "--offload", default="on,off", help="forward paths to sweep: on (worker thread), off (event loop)"
    )
    parser.add_argument("--server-cpus", type=cpu_list, help="CPUs the server runs on (default: per device)")
    parser.add_argument("--task", default="digits", choices=("digits", "digits-large"))
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--duration-s", type=float, default=4.0)
    parser.add_argument("--out", type=Path, help="default: bench/results/serving-<device>.json")
    args = parser.parse_args(argv)
    args.torch_device = require_device(args.device)
    args.batch_sizes = args.batch_sizes or positive_list(DEFAULT_BATCH_SIZES[args.device])
    args.concurrency = args.concurrency or positive_list(DEFAULT_CONCURRENCY[args.device])
    args.server_cpus = args.server_cpus or cpu_list(DEFAULT_SERVER_CPUS[args.device])
    args.offload = [mode.strip() for mode in args.offload.split(",") if mode.strip()]
    if not args.offload or set(args.offload) - {"on", "off"}:
        parser.error(f"--offload {','.join(args.offload)}: a list of on, off")
    args.out = args.out or ROOT / "bench" / "results" / f"serving-{args.device}.json"
    usable = os.sched_getaffinity(0)
    missing = sorted({*args.server_cpus, LOADGEN_CPU} - usable)
    if missing:
        parser.error(f"CPUs {missing} are not usable here (usable: {sorted(usable)}): set --server-cpus")
    if LOADGEN_CPU in args.server_cpus:
        parser.error(f"--server-cpus must leave CPU {LOADGEN_CPU} to the load generator")
    return args


def require_device(device: str) -> torch.device:
    """The device asked for, or a clear stop saying why it is not here."""
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit(
            f"--device cuda: torch {torch.__version__} sees no CUDA device (built for CUDA "
            f"{torch.version.cuda or 'none: a CPU-only build'}, CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}); run on a machine with an NVIDIA GPU, "
            "its driver and a CUDA build of torch (PyPI's default Linux wheel)"
        )
    return torch.device("cuda", torch.cuda.current_device())


# ---- the model ------------------------------------------------------------------------------


def publish_model(task_name: str, registry: Path, keys: Path) -> tuple[dict[str, Any], torch.nn.Module, Path]:
    """The task's model, seeded and untrained (the sweep measures speed, not accuracy), signed
    and published as fp32 v1; its description, the module, and the trusted key."""
    task = load_task(task_name)
    torch.manual_seed(0)
    model = task.build_model().eval()
    signing_key, trusted_key = generate_keypair(keys)
    publish(
        model,
        task,
        registry.as_uri(),
        signing_key,
        artifact=ArtifactId(MODEL, "v1", REGION, Variant.FP32),
        parent_version="v1",
    )
    info = {
        "task": task_name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": "seeded initialisation, untrained (speed only)",
    }
    return info, model, trusted_key


# ---- in-process: the forward alone, and the thread hop --------------------------------------


@contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def timed(call: Callable[[], object], seconds: float) -> tuple[int, float, float]:
    """Calls of `call()` for about `seconds`: (calls, wall s, CPU s of this process)."""
    n, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        call()
        n += 1
    return n, time.perf_counter() - started, time.process_time() - cpu_started


def forward_alone(loaded: LoadedModel, batch_sizes: Sequence[int], seconds: float) -> list[dict[str, float]]:
    """The server's predict call (copies and synchronisation included on CUDA), per batch size."""
    rows = []
    for batch in batch_sizes:
        x = np.random.default_rng(0).random((batch, *loaded.input_shape), dtype=np.float32)
        forward = functools.partial(loaded.predict, x)
        timed(forward, seconds / 4)  # warm-up (CUDA: kernels, the pinned host memory cache)
        n, wall, cpu = timed(forward, seconds)
        rows.append(
            {
                "batch_rows": batch,
                "us_per_forward": wall / n * 1e6,
                "rows_per_s": n * batch / wall,
                "cpu_us_per_forward": cpu / n * 1e6,
            }
        )
    return rows


def thread_hop(loaded: LoadedModel, seconds: float) -> dict[str, float]:
    """One row's forward called on the event loop against the same forward awaited through the
    device's worker thread: wall and CPU microseconds per forward, and the difference."""
    x = np.random.default_rng(0).random((1, *loaded.input_shape), dtype=np.float32)

    async def measure() -> dict[str, float]:
        worker = ForwardWorker(loaded.device)

        async def through_worker(n: int) -> None:
            for _ in range(n):
                await worker.run(loaded.predict, x)

        async def on_loop(n: int) -> None:
            for _ in range(n):
                loaded.predict(x)

        result = {}
        for name, run in (("on_loop", on_loop), ("worker_thread", through_worker)):
            await run(500)
            n, started, cpu_started = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - started < seconds:
                await run(100)
                n += 100
            result[f"{name}_us_per_forward"] = (time.perf_counter() - started) / n * 1e6
            result[f"{name}_cpu_us_per_forward"] = (time.process_time() - cpu_started) / n * 1e6
        await worker.close()
        result["hop_us_per_forward"] = result["worker_thread_us_per_forward"] - result["on_loop_us_per_forward"]
        result["hop_cpu_us_per_forward"] = (
            result["worker_thread_cpu_us_per_forward"] - result["on_loop_cpu_us_per_forward"]
        )
        return result

    return uvloop.run(measure())


# ---- GPU utilisation ------------------------------------------------------------------------


class GpuSampler:
    """nvidia-smi's `utilization.gpu` of one GPU every GPU_SAMPLE_MS, in a process of its own
    for the whole sweep, timestamped as read; `window` summarises the samples of a time span.
    Its output goes to a pseudo-terminal: C's stdio buffers a pipe in 4 KiB blocks (minutes of
    samples), a terminal by the line, so each sample arrives when it is taken."""

    def __init__(self, gpu: str, cpus: set[int]):
        self._samples: list[tuple[float, float]] = []
        reading, writing = pty.openpty()
        self._process = subprocess.Popen(
            [
                "nvidia-smi",
                "-i",
                gpu,
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-lms",
                str(GPU_SAMPLE_MS),
            ],
            stdout=writing,
            stderr=writing,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),  # off the server's CPUs
        )
        os.close(writing)
        self._reader = threading.Thread(target=self._read, args=(reading,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with open(fd, errors="replace") as lines:
            try:
                for line in lines:
                    if line.strip().isdigit():
                        self._samples.append((time.perf_counter(), float(line)))
            except OSError:  # EIO: nvidia-smi has exited and the terminal closed
                return

    def window(self, start: float, end: float) -> dict[str, Any]:
        values = [value for at, value in list(self._samples) if start <= at <= end]
        if not values:
            return {"percent_mean": None, "reason": "no nvidia-smi sample in the measured window"}
        return {"percent_mean": float(np.mean(values)), "percent_max": max(values), "samples": len(values)}

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=10)


def gpu_sampler(device: torch.device, server_cpus: Sequence[int]) -> tuple[GpuSampler | None, str | None]:
    """A sampler of the GPU the sweep runs on (on CPUs neither the server nor the load
    generator uses, where there are any), or None and why not."""
    if device.type != "cuda":
        return None, "the device is the CPU"
    if shutil.which("nvidia-smi") is None:
        return None, "nvidia-smi is not on PATH"
    # nvidia-smi numbers GPUs physically; CUDA_VISIBLE_DEVICES (indices or UUIDs) renumbers them.
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    index = device.index or 0
    usable = os.sched_getaffinity(0)
    spare = usable - {*server_cpus, LOADGEN_CPU} or usable - set(server_cpus)
    return GpuSampler(visible[index] if index < len(visible) else str(index), spare), None


def gpu_facts(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {}
    facts: dict[str, Any] = {"gpu": torch.cuda.get_device_name(device), "torch_cuda": torch.version.cuda}
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        facts["nvidia_driver"] = subprocess.run(query, check=False, capture_output=True, text=True).stdout.strip()
    return facts


# ---- the sweep ------------------------------------------------------------------------------


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """Rows and forward passes so far (the server's batch-size histogram)."""
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}{contract.METRICS_PATH}").text
    totals = []
    for part in ("sum", "count"):
        found = re.search(rf"meridian_inference_batch_size_{part}\{{[^}}]*\}} (\S+)", metrics)
        totals.append(float(found.group(1)) if found else 0.0)
    return totals[0], totals[1]


def device_flags(device: torch.device, batch: int, offload: str) -> list[str]:
    """The server's flags for one point: the batch cap of its device, no added wait."""
    prefix = "--cuda-" if device.type == "cuda" else "--"
    return [
        f"{prefix}max-batch-size",
        str(batch),
        f"{prefix}max-batch-wait-ms",
        "0",
        "--forward-offload",
        offload,
        "--queue-capacity",
        "100000",
        "--torch-threads",
        "1",
    ]


def sweep(
    args: argparse.Namespace, device: torch.device, env: dict[str, str], inputs: Path, sampler: GpuSampler | None
) -> list[dict[str, Any]]:
    rows = []
    infer = f"/v2/models/{MODEL}/infer"
    for offload in args.offload:
        for batch in args.batch_sizes:
            port, metrics_port = free_port(), free_port()
            command = [
                sys.executable,
                "-c",
                PINNED_SERVER.format(cpus=", ".join(map(str, args.server_cpus))),
                *device_flags(device, batch, offload),
            ]
            server_env = {**env, contract.ENV_HTTP_PORT: str(port), contract.ENV_METRICS_PORT: str(metrics_port)}
            with server_process(command, port, server_env, cpu=None) as process:
                served_on = httpx.get(f"http://127.0.0.1:{port}/v2/models/{MODEL}").json()["parameters"]["devices"]
                if not served_on["v1"].startswith(device.type):
                    raise SystemExit(f"the server put the model on {served_on['v1']}, not on {device}")
                for concurrency in args.concurrency:
                    rows_before, forwards_before = batch_totals(metrics_port)
                    result = closed_loop(port, process.pid, infer, inputs, concurrency, args.warmup_s, args.duration_s)
                    ended = time.perf_counter()
                    rows_after, forwards_after = batch_totals(metrics_port)
                    forwards = forwards_after - forwards_before
                    row = {
                        "offload": offload,
                        "max_batch_size": batch,
                        "concurrency": concurrency,
                        **result,
                        "mean_batch_rows": (rows_after - rows_before) / forwards if forwards else None,
                        # The window closes when the load generator has exited, a few ms after it.
                        "gpu_utilization": sampler.window(ended - args.duration_s, ended) if sampler else None,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per forward path: the point with the most req/s, and the one with the most within the
    p99 budget; and the worker's gain over the loop, best against best."""
    shown = ("max_batch_size", "concurrency", "req_per_s", "p50_ms", "p99_ms", "mean_batch_rows", "gpu_utilization")

    def best(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
        top = max(candidates, key=lambda row: row["req_per_s"], default=None)
        return None if top is None else {key: top[key] for key in shown}

    result: dict[str, Any] = {}
    for offload in sorted({row["offload"] for row in rows}):
        clean = [row for row in rows if row["offload"] == offload and row["failed"] == 0]
        result[f"offload_{offload}"] = {
            "best": best(clean),
            f"best_p99_under_{P99_BUDGET_MS:g}_ms": best([row for row in clean if row["p99_ms"] < P99_BUDGET_MS]),
        }
    on, off = result.get("offload_on", {}).get("best"), result.get("offload_off", {}).get("best")
    if on and off:
        result["req_per_s_ratio_offload_on_vs_off"] = on["req_per_s"] / off["req_per_s"]
    return result


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    device = args.torch_device
    load_before = os.getloadavg()
    sampler, no_sampler = gpu_sampler(device, args.server_cpus)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "registry").mkdir()
            model_info, _, trusted_key = publish_model(args.task, work / "registry", work / "keys")
            source = RegistryModelSource(
                (work / "registry").as_uri(), MODEL, REGION, "fp32", trusted_key, work / "cache", device
            )
            with pinned(args.server_cpus):
                torch.set_num_threads(1)
                loaded = source.load("v1")
                alone = forward_alone(loaded, args.batch_sizes, seconds=1.0)
                hop = thread_hop(loaded, seconds=1.0)
            print(json.dumps({"forward_alone": alone, "thread_hop": hop}), flush=True)
            inputs = work / "inputs.npy"
            np.save(inputs, np.random.default_rng(0).random((64, *loaded.input_shape), dtype=np.float32))
            env = {
                contract.ENV_REGION: REGION,
                contract.ENV_REGISTRY_URL: (work / "registry").as_uri(),
                contract.ENV_TRUSTED_KEY: str(trusted_key),
                contract.ENV_CACHE_DIR: str(work / "server-cache"),
                contract.ENV_STABLE_VERSION: "v1",
                contract.ENV_MODEL_VARIANT: "fp32",
                **({"CUDA_VISIBLE_DEVICES": ""} if device.type == "cpu" else {}),
            }
            rows = sweep(args, device, env, inputs, sampler)
    finally:
        if sampler is not None:
            sampler.close()
    results = {
        **provenance("serving", argv, load_before, {"torch": torch.__version__, **gpu_facts(device)}),
        "device": str(device),
        "ran_on_gpu": device.type == "cuda",
        "model": model_info,
        "server": {
            "cpus": args.server_cpus,
            "torch_threads": 1,
            "max_batch_wait_ms": 0,
            "note": "offload on: forward passes in the device's worker thread; off: on the event loop",
        },
        "load": {
            "kind": "closed loop (bench/serving.py), raw asyncio HTTP/1.1 keep-alive, V2 JSON, 1 row per request",
            "loadgen_cpu": LOADGEN_CPU,
            "warmup_s": args.warmup_s,
            "duration_s": args.duration_s,
        },
        "gpu_utilization_source": (
            f"nvidia-smi --query-gpu=utilization.gpu every {GPU_SAMPLE_MS} ms over each measured window "
            "(the share of time one or more kernels ran)"
            if sampler
            else None
        ),
        "gpu_utilization_unavailable": no_sampler,
        "forward_alone": alone,
        "thread_hop": hop,
        "sweep": rows,
        "summary": summary(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
