"""Benchmark (not a test): how long the local stack takes from its start to serving, quick and default.

    .venv-workloads/bin/python bench/local.py [--port-base 23000] [--modes quick,default]

Each mode runs as `make up` runs it, in a fresh process and a fresh out dir (first a quick run,
`python -m meridian local --out DIR up --quick --detach --port-base P`, then the default, the
same without `--quick`), and is stopped with `down` before the next. From the moment the process
is launched, the benchmark calls every server and edge of the fleet as a user does (the users'
API key, the stack's CA, `POST /v2/models/meridian/infer` with the example request):

    serving = launch -> the last server or edge to answer its first authenticated inference (200)

so everything on the way counts: interpreter and imports, keys and data, the federation's start,
the training rounds, each region's localizer pass, the servers' start, download and signature
check. The load and the canary drill run after serving (`up` returns after them); their seconds
are recorded apart. The fleet's ports start at --port-base (default 23000, away from the
default fleet's 8700 and the e2e tests' ports). Writes bench/results/local.json: provenance, per
mode the seconds to serving and to `up`'s return, each phase's start and end as `up` measured
them (report.json's timeline, seconds since its fleet started, phases overlap), the run's
accuracy and request counts; and a summary (`quick_seconds`, `default_seconds`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flwr  # noqa: E402
import httpx  # noqa: E402
import torch  # noqa: E402

from bench.provenance import provenance, write_results  # noqa: E402
from components.config import load_stack  # noqa: E402
from meridian.local.up import LocalFleet  # noqa: E402
from workloads import contract  # noqa: E402

MODES = {"quick": ["--quick"], "default": []}
POLL_S = 0.25
# The bars (issue 13): seconds from start to serving.
BARS = {"quick": 45.0, "default": 90.0}


def _first_answers(fleet: LocalFleet, process: subprocess.Popen[bytes], launched: float) -> dict[str, float]:
    """Seconds from `launched` to each server's and edge's first authenticated inference."""
    door = fleet.front_door
    pending = {site.name: f"{site.url}/v2/models/{contract.MODEL_NAME}/infer" for site in fleet.sites()}
    answered: dict[str, float] = {}
    client: httpx.Client | None = None
    try:
        while pending:
            if process.poll() is not None:
                raise RuntimeError(f"`up` exited with {process.returncode} before serving; see its log")
            if client is None and door.api_key.exists() and door.example_request.exists():
                caller = door.caller()
                client = httpx.Client(headers=caller.headers, verify=caller.tls(), timeout=5.0)
            if client is not None:
                body = door.example_request.read_bytes()
                for name, url in list(pending.items()):
                    try:
                        answer = client.post(url, content=body, headers={"content-type": "application/json"})
                    except httpx.TransportError:  # not listening yet
                        continue
                    if answer.status_code == 200:
                        answered[name] = time.monotonic() - launched
                        del pending[name]
            time.sleep(POLL_S)
    finally:
        if client is not None:
            client.close()
    return answered


def run_mode(mode: str, out: Path, port_base: int, stack: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)  # a first run: the front door's keys are made too
    out.mkdir(parents=True)
    fleet = LocalFleet(stack, load_stack(stack), out, mode == "quick", port_base)
    command = [sys.executable, "-m", "meridian", "local", "--out", str(out), "up", *MODES[mode], "--detach",
               "--port-base", str(port_base)]  # fmt: skip
    print(f"{mode}: {' '.join(command)}", flush=True)
    log = out.parent / f"{mode}-up.log"
    with log.open("wb") as handle:
        launched, launched_at = time.monotonic(), time.time()
        process = subprocess.Popen(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            answered = _first_answers(fleet, process, launched)
            serving = max(answered.values())
            print(f"{mode}: serving after {serving:.1f} s", flush=True)
            code = process.wait(timeout=900)
            returned = time.monotonic() - launched
        finally:
            subprocess.run(
                [sys.executable, "-m", "meridian", "local", "--out", str(out), "down"], cwd=REPO, check=False
            )
            if process.poll() is None:
                process.kill()
    if code != 0:
        raise RuntimeError(f"{mode}: `up` exited with {code}; see {log}")
    report = json.loads((out / "report.json").read_text())
    timeline = report["timeline_seconds"]
    return {
        "command": " ".join(command[1:]),
        "serving_seconds": serving,
        "first_inference_seconds": answered,
        "up_returned_seconds": returned,
        # Before `up`'s fleet started: the interpreter's start, the imports, the stack's config.
        "before_fleet_start_seconds": report["started_at"] - launched_at,
        # What `up` measured, in seconds since its fleet started (phases overlap); "serving": until
        # every server and edge was ready.
        "phases": timeline,
        "rounds": report["rounds"],
        "global_accuracy": report["global_accuracy"],
        "requests": report["requests"],
        "failed_requests": report["failed_requests"],
        "canary_decision": (report.get("canary") or {}).get("decision"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-base", type=int, default=23000, help="the benchmarked fleet's first port")
    parser.add_argument("--modes", default="quick,default", help="comma-separated, of: " + ", ".join(MODES))
    parser.add_argument("--stack", default="local")
    parser.add_argument("--work-dir", type=Path, default=REPO / "out" / "bench-local", help="the runs' out dirs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "local.json")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"--modes: unknown {unknown}; choose from {list(MODES)}")
    load_before = os.getloadavg()
    runs = {mode: run_mode(mode, args.work_dir.resolve() / mode, args.port_base, args.stack) for mode in modes}
    results = {
        **provenance("local", argv, load_before, {"torch": torch.__version__, "flwr": flwr.__version__}),
        "definition": "seconds from launching `meridian local up --detach` to the last server or edge answering "
        "its first authenticated inference through its HTTPS front door",
        "modes": runs,
        "summary": {
            **{f"{mode}_seconds": round(run["serving_seconds"], 1) for mode, run in runs.items()},
            **{f"{mode}_within_bar": run["serving_seconds"] <= BARS[mode] for mode, run in runs.items()},
        },
    }
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
