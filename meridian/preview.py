"""Offline preview: the real Pulumi program under the offline engine (meridian/mocks.py).

There is no cloud account and no Pulumi CLI here, so `meridian preview` runs `__main__.py`
itself with the stack's config against the recording mocks. Every registration is kept (type,
name, parent, provider and its region, engine-shaped inputs) and every invoke the program makes
gets a realistic answer, so the inventory is what `pulumi preview` would plan, minus the cloud.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import yaml

from components.config import StackConfig, load_stack, stack_file
from meridian.mocks import DISABLE_DEFAULT_PROVIDERS, Inventory, run_under_mocks
from meridian.mocks import ProgramError as ProgramError  # what run_program raises, for its callers
from meridian.stack_command import run_stack_command

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"


def _pulumi_config(config: StackConfig | dict[str, Any]) -> dict[str, str]:
    """The stack config as the engine hands it to the program: `meridian:<key>` -> JSON."""
    values = config.model_dump(mode="json", by_alias=True) if isinstance(config, StackConfig) else config
    return {f"meridian:{key}": value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


# What a stack file carries beside `meridian:` (`gcp:project`, the engine's own
# `pulumi:disable-default-providers`), for configs made in code (benchmarks, tests).
DEFAULT_PROVIDER_CONFIG = {"gcp:project": "meridian-preview", DISABLE_DEFAULT_PROVIDERS: json.dumps(["*"])}


def provider_config(stack: str) -> dict[str, str]:
    """The stack file's non-`meridian:` keys as the engine passes them (structured ones as JSON)."""
    document = yaml.safe_load(stack_file(stack).read_text()) or {}
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in (document.get("config") or {}).items()
        if not key.startswith("meridian:")
    }


def run_program(
    config: StackConfig | dict[str, Any],
    stack: str,
    program: Path = PROGRAM,
    providers: dict[str, str] | None = None,
) -> Inventory:
    """Run __main__.py under mocks for this config; return every registration and export.

    `config` is a validated StackConfig, or raw `meridian:` values (namespace stripped) as a
    stack file holds them, to see how the program itself treats a malformed stack.
    `providers` are the other keys of the stack file (default: DEFAULT_PROVIDER_CONFIG).
    """
    program_sys_path = str(ROOT)
    if program_sys_path not in sys.path:
        sys.path.insert(0, program_sys_path)

    def run() -> None:
        runpy.run_path(str(program), run_name="__pulumi__")

    engine_config = {**(DEFAULT_PROVIDER_CONFIG if providers is None else providers), **_pulumi_config(config)}
    return run_under_mocks(run, stack=stack, config=engine_config)


def preview_stack(stack: str) -> Inventory:
    """Load `stacks/Pulumi.<stack>.yaml` (ConfigError names the mistake) and run it."""
    return run_program(load_stack(stack), stack, providers=provider_config(stack))


def _table(inventory: Inventory) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"meridian preview: stack {inventory.stack}", show_lines=False)
    for column in ("type", "name", "parent", "provider/region"):
        table.add_column(column, overflow="fold")
    for r in inventory.resources:
        where = f"{r.provider or '-'} ({r.region})" if r.region else (r.provider or "-")
        table.add_row(r.type, r.name, r.parent or "-", where)
    console = Console()
    console.print(table)
    custom = sum(r.custom for r in inventory.resources)
    console.print(f"{custom} resources, {len(inventory.resources) - custom} components")


def main(argv: list[str]) -> int:
    return run_stack_command(
        argv,
        prog="meridian preview",
        description="Run the Pulumi program offline, under mocks.",
        json_help="print the inventory as JSON",
        compute=preview_stack,
        as_json=lambda _, inventory: inventory.to_json(),
        show=lambda _, inventory: _table(inventory),
    )
