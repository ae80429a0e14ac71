"""`python -m workloads.tasks prepare-data --task digits --regions a,b,c --out DIR`

Writes each region's shard to DIR/<region>/shard.npz (plus a readable shard.json summary).
A SuperNode is later given only its own DIR/<region> directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from workloads.tasks import sync
from workloads.tasks.loading import load_task

SUMMARY_FILE = "shard.json"


def prepare_data(task_ref: str, regions: list[str], out: Path, seed: int, alpha: float) -> dict:
    task = load_task(task_ref)
    shards = task.partition(regions, seed=seed, alpha=alpha)
    summary: dict[str, dict] = {}
    for region, shard in shards.items():
        shard.save(out / region)
        summary[region] = {
            "task": task.name,
            "region": region,
            "seed": seed,
            "alpha": alpha,
            "train_examples": len(shard.y_train),
            "test_examples": len(shard.y_test),
            "train_label_counts": np.bincount(shard.y_train, minlength=task.num_classes).tolist(),
        }
        (out / region / SUMMARY_FILE).write_text(json.dumps(summary[region], indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.tasks")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare-data", help="write each region's shard to OUT/<region>/")
    prepare.add_argument("--task", default="digits", help="built-in name or package.module:TASK")
    prepare.add_argument("--regions", required=True, help="comma-separated region names")
    prepare.add_argument("--out", required=True, type=Path)
    prepare.add_argument("--alpha", type=float, default=0.5, help="Dirichlet skew (small: more)")
    prepare.add_argument("--seed", type=int, default=0)
    sync.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "sync-data":
        return sync.run(args)
    regions = [r.strip() for r in args.regions.split(",")]
    try:
        summary = prepare_data(args.task, regions, args.out, args.seed, args.alpha)
    except ValueError as err:
        print(f"prepare-data: {err}", file=sys.stderr)
        return 2
    for region, info in summary.items():
        print(f"{args.out / region}: {info['train_examples']} train, {info['test_examples']} test examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
