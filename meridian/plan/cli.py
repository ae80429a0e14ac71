"""`python -m meridian plan`: the global node layout from a demand file, written as a stack.

    python -m meridian plan --demand DEMAND.yaml [--out stacks/Pulumi.NAME.yaml] [--json PLAN.json]
                            [--map PLAN.png] [--objective cost|latency|carbon] [--clouds aws,gcp]
    python -m meridian plan --calibration        the latency model's fit and its error
    python -m meridian plan map PLAN.json PLAN.png

Exit status 2, with the reason alone, for a malformed demand or base stack, an unknown metro or
cloud (with the nearest valid names), or a demand no layout meets (the metros and their best
p95, or the limit and the shortfall). The solver (highspy) and the program under mocks run in
the Pulumi environment (.venv); the map needs matplotlib, which the workloads' environment has.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "out" / "plan"


def _default_name(demand: Path) -> str:
    return "planned-" + demand.stem.removeprefix("demand-")


def _resolve(path: str) -> Path:
    """Relative paths from the working directory, else from the repository root (README commands)."""
    here = Path(path)
    return here if here.is_absolute() or here.exists() else ROOT / path


def _map(argv: list[str]) -> int:
    from meridian.plan.map import draw_file

    parser = argparse.ArgumentParser(prog="meridian plan map", description="draw a plan's JSON as a PNG map")
    parser.add_argument("plan", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    draw_file(args.plan, args.png)
    print(f"map: {args.png}")
    return 0


def _calibration() -> int:
    from meridian.plan.latency import calibration
    from meridian.plan.report import calibration_json

    print(json.dumps(calibration_json(calibration()), indent=1))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["map"]:
        return _map(argv[1:])
    parser = argparse.ArgumentParser(prog="meridian plan", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--demand", help="the demand file (see examples/)")
    parser.add_argument("--out", help="the stack file to write (default: stacks/Pulumi.planned-<demand>.yaml)")
    parser.add_argument("--json", help="the plan as JSON (default: out/plan/<stack>.json)")
    parser.add_argument("--map", help="the plan as a PNG map (default: out/plan/<stack>.png)")
    parser.add_argument("--objective", choices=["cost", "latency", "carbon"], default="cost")
    parser.add_argument("--clouds", help="comma-separated clouds, instead of the demand file's")
    parser.add_argument("--calibration", action="store_true", help="print the latency model's fit and error, then stop")
    args = parser.parse_args(argv)
    if args.calibration:
        return _calibration()
    if not args.demand:
        parser.error("--demand is required")
    return _plan(args)


def _plan(args: argparse.Namespace) -> int:
    from components.config import ConfigError, load_stack
    from meridian.plan.demand import DemandError, check_clouds, load_demand
    from meridian.plan.optimizer import Objective
    from meridian.plan.planner import Infeasible, load_base, plan
    from meridian.plan.report import print_plan, to_json
    from meridian.plan.stack import plan_regions, read_document, settings_of, stack_document, write_stack

    started = time.monotonic()
    demand_path = _resolve(args.demand)
    out = Path(args.out) if args.out else ROOT / "stacks" / f"Pulumi.{_default_name(demand_path)}.yaml"
    name = out.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        demand = load_demand(demand_path)
        clouds = demand.allowed_clouds
        if args.clouds:
            try:
                clouds = check_clouds(args.clouds.split(","))
            except ValueError as err:
                raise DemandError("--clouds", [("", str(err).split("@")[-1])]) from None
        base = load_base(_resolve(demand.base) if demand.base else None)
        result = plan(demand, Objective(args.objective), clouds, base)
    except (DemandError, ConfigError, Infeasible) as err:
        print(err, file=sys.stderr)
        return 2
    base_document = read_document(base.path) if base.path else None
    document = stack_document(result.home, plan_regions(result), settings_of(base_document), base_document)
    written = datetime.now(UTC).strftime("%Y-%m-%d")
    header = (
        f"Written by `meridian plan --demand {args.demand} --objective {args.objective}` on {written}.\n"
        f"Placement (home, regions, edge sites, node counts) is the plan's: change the demand and plan again.\n"
        + (
            f"Every other setting is {base.path.name}'s."
            if base.path
            else "No base stack: auth, dns and tags are placeholders (meridian/plan/stack.py DEFAULT_SETTINGS): set yours."
        )
    )
    write_stack(out, document, header)
    load_stack(name, out.parent)  # what the program will read: a plan that does not load is a bug here
    plan_json = Path(args.json) if args.json else OUT / f"{name}.json"
    plan_json.parent.mkdir(parents=True, exist_ok=True)
    payload = to_json(result, str(args.demand), str(out))
    plan_json.write_text(json.dumps(payload, indent=1) + "\n")
    print_plan(result, str(out))
    png = Path(args.map) if args.map else OUT / f"{name}.png"
    if importlib.util.find_spec("matplotlib") is not None:
        from meridian.plan.map import draw

        draw(payload, png)
        print(f"map: {png}")
    else:
        print(
            f"map: matplotlib is in the workloads' environment: .venv-workloads/bin/python -m meridian plan map {plan_json} {png}"
        )
    print(f"plan: {plan_json}; planned in {time.monotonic() - started:.1f} s")
    return 0
