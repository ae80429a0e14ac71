"""The shape of the commands that take one stack and report on it (`meridian preview`, `meridian
cost`): a table for people, `--json` for tools, and exit status 2 with the message alone when the
stack is malformed or its program refuses it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TypeVar

from components.config import ConfigError
from meridian.mocks import ProgramError

T = TypeVar("T")  # what the command computes for the stack


def run_stack_command(
    argv: list[str],
    *,
    prog: str,
    description: str,
    json_help: str,
    compute: Callable[[str], T],
    as_json: Callable[[str, T], object],
    show: Callable[[str, T], None],
) -> int:
    """Parse `STACK [--json]`, compute the stack's result and print it either way."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help=json_help)
    args = parser.parse_args(argv)
    try:
        result = compute(args.stack)
    except (ConfigError, ProgramError) as err:
        print(err, file=sys.stderr)
        return 2
    if args.json:
        json.dump(as_json(args.stack, result), sys.stdout, indent=1, default=str)
        print()
    else:
        show(args.stack, result)
    return 0
