"""`python -m meridian local up|status|canary|down`: the whole fleet as processes on this machine."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from meridian.local.front_door import FrontDoor
from meridian.local.supervisor import LocalStackError, ProcessSpec, is_healthy, read_state
from workloads.processes import alive as pid_alive
from workloads.processes import stop_pids

ROOT = Path(__file__).resolve().parents[2]
# What `up` imports or runs: checked first, so a missing one is named rather than a traceback.
REQUIRED_MODULES = ("torch", "flwr", "numpy", "safetensors", "cryptography", "uvicorn", "httpx", "matplotlib")
DEFAULT_OUT = ROOT / "out" / "local"


def require_dependencies() -> None:
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalStackError(
            f"missing dependencies: {', '.join(missing)} (in {sys.executable}). Run `make up`, "
            "which builds the workloads' environment (.venv-workloads) and runs this in it."
        )


def status(out_dir: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    state = read_state(out_dir / "state.json")
    if not state:
        console.print("no local fleet is running (start one with `make up`)")
        return 1
    table = Table(title=f"local fleet, started {state['started']}")
    for column in ("process", "role", "pid", "url", "health"):
        table.add_column(column)
    unhealthy = 0
    for entry in state["processes"]:
        spec = ProcessSpec(
            name=entry["name"],
            argv=entry["argv"],
            role=entry["role"],
            port=entry.get("port"),
            health_url=entry.get("health_url"),
            url=entry.get("url"),
            ca_file=entry.get("ca_file"),
        )
        if not pid_alive(entry["pid"]):
            health = "[red]exited[/red]"
            unhealthy += 1
        elif is_healthy(spec):
            health = "[green]healthy[/green]"
        else:
            health = "[yellow]not ready[/yellow]"
            unhealthy += 1
        table.add_row(spec.name, spec.role, str(entry["pid"]), spec.url or "-", health)
    console.print(table)
    for entry in state["processes"]:
        if entry["role"] == "prometheus":
            console.print(f"Prometheus: {entry['url']} (targets: {entry['url']}/targets)")
    if server := next((entry for entry in state["processes"] if entry["role"] == "server"), None):
        door = FrontDoor(out_dir.resolve())
        console.print(f"Call it as a user (API key in {door.api_key}, the stack's CA in {door.ca_cert}):")
        print(f"  {door.curl(server['url'])}")  # plain print: no wrapping, no markup
    return 0 if unhealthy == 0 else 1


def down(out_dir: Path) -> int:
    state_file = out_dir / "state.json"
    state = read_state(state_file)
    if not state:
        print("no local fleet is running")
        return 0
    pids = [p["pid"] for p in reversed(state["processes"])]
    supervisor = state.get("supervisor_pid")
    if supervisor and pid_alive(supervisor):
        pids.append(supervisor)  # a foreground `up` shuts its children down itself on SIGTERM
    stop_pids(pids)
    state_file.unlink(missing_ok=True)
    print(f"stopped {len(state['processes'])} processes")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meridian local", description="Run the local stack's fleet on this machine.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="state, logs and report")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="train, localize, serve and load the fleet")
    up_parser.add_argument("--stack", default="local", help="a stack whose regions are all `kubernetes`")
    up_parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller load")
    up_parser.add_argument("--detach", action="store_true", help="return once serving")
    up_parser.add_argument("--port-base", type=int, default=8700, help="first of the consecutive ports the fleet uses")
    up_parser.add_argument(
        "--canary",
        choices=("good", "bad", "off"),
        default="good",
        help="the canary drill once serving: publish a good or a deliberately bad candidate (needs prometheus)",
    )
    canary_parser = commands.add_parser("canary", help="one more canary drill on the running fleet")
    canary_parser.add_argument("kind", choices=("good", "bad"), help="the candidate to publish")
    commands.add_parser("status", help="every process with its URL and health")
    commands.add_parser("down", help="stop every process of the local fleet")
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            return status(args.out)
        if args.command == "down":
            return down(args.out)
        require_dependencies()
        from meridian.local.up import canary_drill, up

        if args.command == "canary":
            return canary_drill(args.out, args.kind)
        return up(
            stack=args.stack,
            out_dir=args.out,
            quick=args.quick,
            detach=args.detach,
            port_base=args.port_base,
            canary=args.canary,
        )
    except LocalStackError as err:
        print(f"meridian local: {err}", file=sys.stderr)
        return 1
