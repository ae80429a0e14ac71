"""Benchmark (not a test): update compression, both directions, on the real Flower Deployment
Engine, and the localized variants of the model it trains.

    .venv-workloads/bin/python bench/federated.py [--rounds 8] [--modes none,fp16,...|all]

One SuperLink and three SuperNodes (TLS, node auth) on loopback train `digits-large`
(MLP 64-1024-1024-10, 1.13M parameters) for the same rounds from the same seed once per
compression mode (MODES: dense modes, then top-k rows that each add one technique to the
previous one, ending with a compressed downlink: the ablation; DEFAULT_MODES by default). For each mode: the
SuperLink's own byte counts (inbound = uplink, outbound = downlink; the ratios to `none`),
uplink bytes per round (payload: the update's arrays as
serialized; wire: the whole reply message as pushed to the SuperLink), the ratio to `none`,
final global accuracy and the drop against `none`, and round time split into local training
(the slowest region) and framework overhead (process start, transfer, encode/decode,
aggregation). Then the `none` run's global model is localized per region
(workloads.localization.measure_variants: fp32 fine-tuned vs structurally pruned vs int8).
Then the round overhead (round wall time minus the slowest region's local evaluation and
training) of the `none` configuration, before and after: "before" is Flower 1.42's default, a
fresh `flwr-clientapp` process per message, its fixed 3 s polls and 1 s retries of contents
still arriving; "after" is how LocalFederation runs by default, each SuperNode beside its
long-lived ClientApp process (tasks forked warm), polls capped at 0.1 s, replies pulled every
0.05 s, contents still arriving retried at those intervals (object_pulls.py). Both send each
model as one array (packing.py: the app's own, not a deployment choice). Each round is broken
into phases measured on each side (workloads/trainer/round_phases.py): the server's push,
wait for replies and aggregation; for the region whose reply came last, its ClientApp's setup
(process start to handler), evaluation, training, and transport (the server's wait for that
reply minus the task's own time: polls, message transfer, handing it to a process).
Writes bench/results/federated.json with a `summary` object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flwr  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from bench.provenance import provenance  # noqa: E402
from workloads.localization import measure_variants  # noqa: E402
from workloads.tasks import Shard, load_task  # noqa: E402
from workloads.tasks.__main__ import prepare_data  # noqa: E402
from workloads.trainer.launch import LocalFederation, Node, RunResult  # noqa: E402

TASK = "digits-large"
REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-1"]
ALPHA, SEED = 0.5, 0
# (name, run config, what the row adds to the row before it). Top-k is one threshold across the
# model, the whole update packed into one array (compression.py).
MODES: list[tuple[str, dict[str, Any], str]] = [
    ("none", {"compression": "none"}, "uncompressed FedAvg: the reference"),
    ("fp16", {"compression": "fp16"}, "the delta in float16"),
    ("int8", {"compression": "int8"}, "the delta in int8, a scale per row"),
    (
        "topk@0.02+gaps",
        {"compression": "topk", "topk-fraction": 0.02, "topk-index-coding": "gaps"},
        "top-k 2% of the model with error feedback, int8 values, fixed-width index gaps",
    ),
    (
        "topk@0.02",
        {"compression": "topk", "topk-fraction": 0.02},
        "index gaps as varints, zlib-compressed (lossless: same accuracy)",
    ),
    ("topk@0.01", {"compression": "topk", "topk-fraction": 0.01}, "k halved to 1%"),
    (
        "topk@0.01+4bit",
        {"compression": "topk", "topk-fraction": 0.01, "topk-value-bits": 4},
        "4-bit values (-7..7 times a scale per tensor), two to a byte",
    ),
    (
        "topk@0.015+4bit",
        {"compression": "topk", "topk-fraction": 0.015, "topk-value-bits": 4},
        "k at 1.5% instead of 1%, 4-bit values",
    ),
    (
        "topk@0.01+4bit+down@0.05",
        {"compression": "topk", "topk-fraction": 0.01, "topk-value-bits": 4, "downlink": "topk"},
        "on topk@0.01+4bit: the downlink as the top-5% delta to the nodes' model, server-side error feedback",
    ),
    (
        "topk@0.015+4bit+down@0.05",
        {"compression": "topk", "topk-fraction": 0.015, "topk-value-bits": 4, "downlink": "topk"},
        "on topk@0.015+4bit: the downlink at 5% (in process: -0.22 points, 186x uplink wire, 105x total wire)",
    ),
    (
        "topk@0.02+down@0.1",
        {"compression": "topk", "topk-fraction": 0.02, "downlink": "topk", "downlink-topk-fraction": 0.1},
        "on topk@0.02: the downlink at 10%, 8-bit values",
    ),
]
# What a plain run measures (~4 minutes): the dense modes, each top-k technique once, and the
# candidate for >= 150x uplink within 1 point; --modes all runs every row of MODES.
DEFAULT_MODES = ["none", "fp16", "int8", "topk@0.02", "topk@0.01+4bit", "topk@0.015+4bit", "topk@0.015+4bit+down@0.05"]


def _mode_table(name: str, config: dict[str, Any], adds: str, result: RunResult) -> dict[str, Any]:
    rounds = result.rounds
    return {
        "mode": name,
        "run_config": config,
        "adds": adds,
        "run_id": result.run_id,
        "final_accuracy": rounds[-1]["global"]["accuracy"],
        "accuracy_per_round": [r["global"]["accuracy"] for r in rounds],
        "uplink_payload_bytes_per_round": [r["uplink_payload_bytes"] for r in rounds],
        "uplink_wire_bytes_per_round": [r["uplink_wire_bytes"] for r in rounds],
        "downlink_payload_bytes_per_round": [r["downlink_payload_bytes"] for r in rounds],
        "downlink_wire_bytes_per_round": [r["downlink_wire_bytes"] for r in rounds],
        "superlink_traffic_bytes": result.traffic_bytes,
        "seconds": {
            "run": result.seconds,
            "round_mean": statistics.mean(r["seconds"]["round"] for r in rounds),
            "training_mean": statistics.mean(r["seconds"]["training"] for r in rounds),
            "overhead_mean": statistics.mean(r["seconds"]["overhead"] for r in rounds),
        },
        "regions_aggregated_per_round": [r["aggregated"] for r in rounds],
    }


def _compare(tables: list[dict[str, Any]]) -> None:
    base = next(t for t in tables if t["mode"] == "none")
    for table in tables:
        for measure in ("payload", "wire"):
            ours = sum(table[f"uplink_{measure}_bytes_per_round"])
            table[f"uplink_{measure}_ratio_vs_none"] = sum(base[f"uplink_{measure}_bytes_per_round"]) / ours
        for direction in ("inbound", "outbound", "total"):
            ours = table["superlink_traffic_bytes"][direction]
            table[f"superlink_{direction}_ratio_vs_none"] = base["superlink_traffic_bytes"][direction] / ours
        table["accuracy_drop_points_vs_none"] = 100 * (base["final_accuracy"] - table["final_accuracy"])


def _localized(global_weights: Path, data: Path) -> dict[str, Any]:
    task = load_task(TASK)
    state = load_file(str(global_weights))
    return {region: measure_variants(task, state, Shard.load(data / region)) for region in REGIONS}


# "before": Flower's own mechanism and intervals; "after": LocalFederation's default.
OVERHEAD_SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "before": ({"isolation": "subprocess", "poll_interval": None}, {"reply-poll-interval": 3.0}),
    "after": ({"isolation": "process", "poll_interval": 0.1}, {"reply-poll-interval": 0.05}),
}


def _phase_row(record: dict[str, Any]) -> dict[str, Any]:
    """One round's phases; the node side is the region whose reply the server waited for last."""
    seconds, regions = record["seconds"], record["regions"]
    timed = {region: part["clientapp"] for region, part in regions.items() if "clientapp" in part}
    last = max(timed, key=lambda region: timed[region]["reply_wait_seconds"])
    node = timed[last]
    return {
        "round": record["round"],
        "round_seconds": seconds["round"],
        "local_seconds": seconds["local"],
        "overhead_seconds": seconds["overhead"],
        "server": seconds["phases"],
        "last_region": last,
        "node": {key.removesuffix("_seconds"): node[key] for key in node if key.endswith("_seconds")},
    }


def _mean_phases(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(values: Any) -> float:
        return statistics.mean(values)

    return {
        "overhead_seconds": mean(r["overhead_seconds"] for r in rows),
        "round_seconds": mean(r["round_seconds"] for r in rows),
        "local_seconds": mean(r["local_seconds"] for r in rows),
        "server": {k: mean(r["server"][k] for r in rows) for k in rows[0]["server"]},
        "node": {k: mean(r["node"][k] for r in rows) for k in rows[0]["node"]},
    }


def round_overhead(workdir: Path, data: Path, rounds: int) -> dict[str, Any]:
    """The `none` configuration under each of OVERHEAD_SETUPS, every round broken into phases."""
    out: dict[str, Any] = {}
    for name, (federation_options, run_options) in OVERHEAD_SETUPS.items():
        nodes = [Node(region, data / region) for region in REGIONS]
        with LocalFederation(workdir / f"overhead-{name}", nodes, **federation_options) as federation:
            run_config = {"task": TASK, "rounds": rounds, "seed": SEED, "strategy": "fedavg", "compression": "none"}
            result = federation.run({**run_config, **run_options}, timeout=300 + 120 * rounds, run_name=name)
        rows = [_phase_row(record) for record in result.rounds]
        out[name] = {
            "federation": federation_options,
            "run_config": run_options,
            "rounds": rows,
            "mean": _mean_phases(rows),
        }
        print(f"round overhead {name}: {out[name]['mean']['overhead_seconds']:.2f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES), help="a subset of MODES, or `all`")
    parser.add_argument("--overhead-rounds", type=int, default=5, help="rounds of each round-overhead run")
    parser.add_argument("--workdir", type=Path, default=REPO / "out" / "bench" / "federated")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "federated.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    load_before = os.getloadavg()
    data = args.workdir / "data"
    prepare_data(TASK, REGIONS, data, seed=SEED, alpha=ALPHA)
    chosen = {name for name, _, _ in MODES} if args.modes == "all" else set(args.modes.split(",")) | {"none"}
    if unknown := chosen - {name for name, _, _ in MODES}:
        parser.error(f"--modes: unknown {sorted(unknown)}; known: {[name for name, _, _ in MODES]}")
    modes = [mode for mode in MODES if mode[0] in chosen]
    tables, none_model = [], None
    nodes = [Node(region, data / region) for region in REGIONS]
    with LocalFederation(args.workdir / "federation", nodes) as federation:
        for name, config, adds in modes:
            run_config = {"task": TASK, "rounds": args.rounds, "seed": SEED, "strategy": "fedavg", **config}
            run_name = name.replace("@", "-").replace("+", "-")
            result = federation.run(run_config, timeout=300 + 240 * args.rounds, run_name=run_name)
            tables.append(_mode_table(name, config, adds, result))
            if name == "none":
                none_model = result.out_dir / "model.safetensors"
            print(
                f"{name}: accuracy {tables[-1]['final_accuracy']:.4f}, uplink/round "
                f"{statistics.mean(tables[-1]['uplink_payload_bytes_per_round']):,.0f} B, "
                f"SuperLink {tables[-1]['superlink_traffic_bytes']}",
                flush=True,
            )
    _compare(tables)
    overhead = round_overhead(args.workdir, data, args.overhead_rounds)
    assert none_model is not None
    localized = _localized(none_model, data)
    within = [t for t in tables if t["accuracy_drop_points_vs_none"] <= 1.0]
    best = max(within, key=lambda t: t["superlink_inbound_ratio_vs_none"])
    best_total = max(within, key=lambda t: t["superlink_total_ratio_vs_none"])
    int8 = [region["int8_vs_fp32"] for region in localized.values()]
    results = {
        **provenance("federated", argv, load_before, {"torch": torch.__version__, "flwr": flwr.__version__}),
        "setup": {
            "task": TASK,
            "parameters": sum(p.numel() for p in load_task(TASK).build_model().parameters()),
            "regions": REGIONS,
            "dirichlet_alpha": ALPHA,
            "seed": SEED,
            "rounds": args.rounds,
            "strategy": "fedavg",
            "engine": "Flower 1.42 Deployment Engine on loopback, TLS + SuperNode auth, 1 thread per node",
        },
        "compression": tables,
        "localized_variants": {"global_model": f"the `none` run's final model ({TASK})", "regions": localized},
        "round_overhead": overhead,
        "summary": {
            "best_uplink_ratio_within_1pt": best["superlink_inbound_ratio_vs_none"],
            "best_mode_within_1pt": best["mode"],
            "best_uplink_payload_ratio_within_1pt": best["uplink_payload_ratio_vs_none"],
            "best_uplink_wire_ratio_within_1pt": best["uplink_wire_ratio_vs_none"],
            "best_uplink_accuracy_drop_points": best["accuracy_drop_points_vs_none"],
            "total_traffic_ratio_within_1pt": best_total["superlink_total_ratio_vs_none"],
            "best_total_mode_within_1pt": best_total["mode"],
            "best_total_accuracy_drop_points": best_total["accuracy_drop_points_vs_none"],
            "ratios_from": "the SuperLink's own byte counts for each run (inbound: uplink; total: both directions)",
            "int8_size_ratio": min(r["size_ratio"] for r in int8),
            "int8_speedup_batch1": min(r["speedup_batch1"] for r in int8),
            "int8_accuracy_drop_points": max(r["accuracy_drop_points"] for r in int8),
            "summary_over_regions": "worst region: smallest ratios, largest drop",
            "round_overhead_seconds": overhead["after"]["mean"]["overhead_seconds"],
            "round_overhead_seconds_before": overhead["before"]["mean"]["overhead_seconds"],
            "seconds": time.monotonic() - started,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
