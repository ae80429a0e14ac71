"""`python -m meridian diff STACK --base REF`: what a change does to a stack, offline.

The offline preview runs twice: at REF (checked out with `git worktree` into a temporary
folder) and in the working tree, each in its own process with this same Python. Resources
are matched by (type, name) and reported as added, removed or changed (with the input keys
that changed), plus the cost delta at min and max scale, as Markdown for a pull-request
comment. No cloud credentials are needed, so it runs on pull requests from forks too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import ConfigError, load_stack
from meridian.cost import priced
from policy.rules.pricing import Estimate, estimate, hours_per_month

ROOT = Path(__file__).resolve().parent.parent
PREVIEW_TIMEOUT_S = 600
MAX_KEY_DEPTH = 3  # `spec.template.spec`: deep enough to say what changed, short enough to read


class DiffError(Exception):
    """The base ref or one of the previews could not be produced."""


@dataclass
class StackDiff:
    stack: str
    base: str  # the ref as given
    base_commit: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (type, name)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (type, name, keys)
    unchanged: int = 0
    base_cost: Estimate = field(default_factory=Estimate)
    head_cost: Estimate = field(default_factory=Estimate)
    note: str = ""


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def preview_json(tree: Path, stack: str) -> dict[str, Any] | None:
    """`meridian preview STACK --json` run in `tree`; None when the stack does not exist there."""
    if not (tree / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        return None
    result = subprocess.run(
        [sys.executable, "-m", "meridian", "preview", stack, "--json"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=PREVIEW_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise DiffError(f"offline preview of {stack} failed in {tree}:\n{tail}")
    return json.loads(result.stdout)


def changed_keys(old: Any, new: Any, prefix: str = "", depth: int = 1) -> list[str]:
    """Dotted paths (to MAX_KEY_DEPTH) where two input values differ."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and depth <= MAX_KEY_DEPTH:
        keys: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                keys.append(path)
            else:
                keys += changed_keys(old[key], new[key], path, depth + 1)
        return keys
    return [prefix or "(value)"]


def _home(tree: Path, stack: str) -> str | None:
    try:
        return load_stack(stack, tree / "stacks").home
    except ConfigError:
        return None


def compare(
    stack: str, base_ref: str, base_commit: str, base: dict[str, Any] | None, head: dict[str, Any]
) -> StackDiff:
    diff = StackDiff(stack, base_ref, base_commit)
    old = {(r["type"], r["name"]): r for r in (base or {}).get("resources", [])}
    new = {(r["type"], r["name"]): r for r in head.get("resources", [])}
    diff.added = sorted(set(new) - set(old))
    diff.removed = sorted(set(old) - set(new))
    for key in sorted(set(old) & set(new)):
        keys = changed_keys(old[key].get("inputs") or {}, new[key].get("inputs") or {})
        if keys:
            diff.changed.append((*key, keys))
        else:
            diff.unchanged += 1
    if base is None:
        diff.note = f"stack {stack} does not exist at {base_ref}: everything is new"
    return diff


def diff_stack(stack: str, base_ref: str, repo: Path = ROOT) -> StackDiff:
    """The offline preview of `stack` at `base_ref` against `repo`'s working tree."""
    commit = _git(repo, "rev-parse", "--verify", f"{base_ref}^{{commit}}")
    head = preview_json(repo, stack)
    if head is None:
        raise DiffError(f"no such stack {stack!r} in {repo / 'stacks'}")
    with tempfile.TemporaryDirectory(prefix="meridian-diff-") as scratch:
        tree = Path(scratch) / "base"
        _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            base = preview_json(tree, stack)
            base_home = _home(tree, stack) if base is not None else None
        finally:
            _git(repo, "worktree", "remove", "--force", str(tree))
    diff = compare(stack, base_ref, commit, base, head)
    if base is not None:
        diff.base_cost = estimate(priced(base["resources"]), base_home)
    diff.head_cost = estimate(priced(head["resources"]), _home(repo, stack))
    return diff


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _delta(old: float, new: float) -> str:
    change = new - old
    return f"{'+' if change >= 0 else '-'}{_money(abs(change))}"


def markdown(diff: StackDiff) -> str:
    lines = [
        f"### Offline preview of `{diff.stack}`: `{diff.base}` ({diff.base_commit[:12]}) → working tree",
        "",
        (
            f"**{len(diff.added)} to add, {len(diff.changed)} to change, {len(diff.removed)} to delete**, "
            f"{diff.unchanged} unchanged."
        ),
    ]
    if diff.note:
        lines += ["", f"_{diff.note}_"]
    sections = (
        ("Added", [(t, n, "") for t, n in diff.added]),
        ("Changed", [(t, n, ", ".join(f"`{k}`" for k in keys)) for t, n, keys in diff.changed]),
        ("Removed", [(t, n, "") for t, n in diff.removed]),
    )
    for title, rows in sections:
        if not rows:
            continue
        lines += ["", f"<details><summary>{title} ({len(rows)})</summary>", ""]
        lines += ["| type | name | changed inputs |" if title == "Changed" else "| type | name |"]
        lines += ["| --- | --- | --- |" if title == "Changed" else "| --- | --- |"]
        for type_, name, keys in rows:
            lines.append(f"| `{type_}` | `{name}` | {keys} |" if title == "Changed" else f"| `{type_}` | `{name}` |")
        lines += ["", "</details>"]
    month = hours_per_month()
    old, new = diff.base_cost, diff.head_cost
    lines += [
        "",
        "| cost | base | this change | delta |",
        "| --- | ---: | ---: | ---: |",
        f"| $/hour at min scale | {_money(old.usd_hour_min)} | {_money(new.usd_hour_min)} | {_delta(old.usd_hour_min, new.usd_hour_min)} |",
        f"| $/hour at max scale | {_money(old.usd_hour_max)} | {_money(new.usd_hour_max)} | {_delta(old.usd_hour_max, new.usd_hour_max)} |",
        f"| $/month at max scale | {_money(old.usd_hour_max * month)} | {_money(new.usd_hour_max * month)} | {_delta(old.usd_hour_max * month, new.usd_hour_max * month)} |",
        f"| GPUs at max scale | {old.gpus_max} | {new.gpus_max} | {new.gpus_max - old.gpus_max:+d} |",
        "",
        "_Prices: policy/rules/prices.yaml (on-demand list prices, traffic as stated there)._",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meridian diff", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    try:
        diff = diff_stack(args.stack, args.base)
    except (DiffError, subprocess.TimeoutExpired) as err:
        print(err, file=sys.stderr)
        return 2
    text = markdown(diff)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0
