"""`python -m meridian monitoring generate [--check]` (`make rules`): monitoring/ from its definition.

`generate` writes the rule files, their promtool tests, the runbook, the dashboards and their
catalogue (monitoring/DASHBOARDS.md);
`--check` writes nothing and fails naming every file that differs from what it would write,
is missing, or is left over in a generated folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meridian.monitoring import dashboards, rules

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATED_DIRS = ("monitoring/rules", "monitoring/tests", "monitoring/dashboards")


def generated() -> dict[str, str]:
    """Every generated file, path relative to the repository root -> content."""
    return rules.render() | dashboards.render()


def drift(root: Path) -> list[str]:
    """Paths under `root` that differ from what the generator writes, are missing, or are stale."""
    files = generated()
    wrong = [p for p, text in files.items() if not (root / p).is_file() or (root / p).read_text() != text]
    stale = [
        str(path.relative_to(root))
        for folder in GENERATED_DIRS
        if (root / folder).is_dir()
        for path in sorted((root / folder).iterdir())
        if str(path.relative_to(root)) not in files
    ]
    return sorted(wrong + stale)


def write(root: Path) -> list[str]:
    """Writes every generated file and removes stale ones; returns the paths that changed."""
    changed = drift(root)
    files = generated()
    for path in changed:
        target = root / path
        if path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path])
        else:
            target.unlink()
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="meridian monitoring", description="monitoring/ from its definition in meridian/monitoring/"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write monitoring/ (rules, promtool tests, runbook, dashboards)")
    gen.add_argument("--check", action="store_true", help="write nothing; fail naming the files that drifted")
    args = parser.parse_args(argv)
    if args.check:
        drifted = drift(ROOT)
        for path in drifted:
            print(f"{path}: differs from `make rules` output (edit meridian/monitoring/, then run make rules)")
        return 1 if drifted else 0
    for path in write(ROOT):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
