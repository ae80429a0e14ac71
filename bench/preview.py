"""How long the Pulumi program takes to evaluate, as the fleet grows (not a test).

Generates stacks of 1, 5 and 20 regions over both clouds (every other region with an edge
site), runs the real program under the offline mocks for each, and writes
bench/results/preview.json. Each size runs in a fresh process, as `pulumi preview` would.

    .venv/bin/python bench/preview.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.catalog import AWS_REGIONS, GCP_REGIONS, Accelerator, gcp_gpu_zones  # noqa: E402
from components.config import StackConfig  # noqa: E402

SIZES = (1, 5, 20)
REPEATS = 2
RESULTS = ROOT / "bench" / "results" / "preview.json"


def generated_stack(regions: int) -> dict[str, Any]:
    """A valid stack of `regions` regions alternating AWS and GCP, home in the first."""
    aws = iter(AWS_REGIONS.items())
    # GCP regions whose zones offer the T4 (the config refuses the others)
    gcp = iter((n, r) for n, r in GCP_REGIONS.items() if gcp_gpu_zones(n, Accelerator.T4))
    entries = []
    for i in range(regions):
        cloud = "aws" if i % 2 == 0 else "gcp"
        name, residency = next(aws if cloud == "aws" else gcp)
        gpu = {"accelerator": "t4", "min": 0, "desired": 1, "max": 4, "spot": True}
        gpu["machineType"] = "g4dn.xlarge" if cloud == "aws" else "n1-standard-4"
        sites = []
        if i % 2 == 0:
            location = f"{name}-edge-1a" if cloud == "aws" else f"{name}-b"
            sites = [{"name": f"edge{i}", "location": location, "capacity": 1}]
        entries.append({"name": name, "cloud": cloud, "residency": str(residency), "gpu": gpu, "edgeSites": sites})
    return {
        "home": entries[0]["name"],
        "regions": entries,
        "federation": {"minRegions": 1},
        "dns": {"domain": "bench.meridian.example.com"},
        "auth": {"apiKeys": ["bench"]},  # every stack names its callers (the offline engine stands in a secret)
        "limits": {"maxGpus": 1000, "maxUsdPerHour": 100000},
        "tags": {"owner": "bench", "costCenter": "bench"},
    }


def _measure(regions: int) -> dict[str, Any]:
    """Runs in a child process: one evaluation of the program for a generated stack."""
    from meridian.preview import run_program

    config = StackConfig.model_validate(generated_stack(regions))
    started = time.perf_counter()
    inventory = run_program(config, f"bench-{regions}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "resources": sum(r.custom for r in inventory.resources)}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(_measure(int(sys.argv[2]))))
        return
    rows = []
    for regions in SIZES:
        runs = []
        for _ in range(REPEATS):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(regions)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            ).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["seconds"])
        rows.append({"regions": regions, **best, "all_seconds": [r["seconds"] for r in runs]})
        print(f"{regions:>3} regions: {best['resources']:>5} resources in {best['seconds']:.2f} s")
    first, last = rows[0], rows[-1]
    per_region = (last["seconds"] - first["seconds"]) / (last["regions"] - first["regions"])
    resources_per_region = (last["resources"] - first["resources"]) / (last["regions"] - first["regions"])
    result = {
        "benchmark": "preview",
        "command": ".venv/bin/python bench/preview.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "method": f"best of {REPEATS} fresh-process runs of the program under mocks per size",
        "rows": rows,
        "summary": {
            "seconds_1_region": first["seconds"],
            "seconds_20_regions": last["seconds"],
            "seconds_per_added_region": per_region,
            "resources_per_added_region": resources_per_region,
            "target_seconds_20_regions": 20,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
