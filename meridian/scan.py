"""`python -m meridian scan`: checkov and the workflow schema over what Meridian ships.

  1. renders every Kubernetes object the program registers, for every stack, as YAML
     (from the recorded inputs, which are the manifests) into out/manifests/<stack>/;
  2. checkov (`--skip-download`: offline) over those manifests, workloads/*/Dockerfile and
     .github/workflows/: any failed check fails the scan; suppressions live inline with
     their reason (a `checkov.io/skip<n>` annotation, a `# checkov:skip=` comment);
  3. check-jsonschema's built-in `vendor.github-workflows` schema over .github/workflows/.

checkov and check-jsonschema live in their own environment (.venv-tools, built from
tools/requirements-checkov.txt): their pins conflict with the Pulumi program's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components.config import available_stacks
from meridian.preview import preview_stack

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-tools" / "bin"
OUT = ROOT / "out" / "manifests"
NOT_MANIFESTS = ("kubernetes:helm.sh/", "pulumi:providers:kubernetes")  # releases render in-cluster


def api_version(token: str) -> str:
    """`kubernetes:apps/v1:Deployment` -> `apps/v1`; the core group is just `v1`."""
    group_version = token.split(":")[1]
    return group_version.removeprefix("core/")


def manifests(stack: str) -> list[dict[str, Any]]:
    """The stack's Kubernetes objects, as the API server would receive them."""
    objects = []
    for record in preview_stack(stack).resources:
        if not record.type.startswith("kubernetes:") or record.type.startswith(NOT_MANIFESTS):
            continue
        inputs = dict(record.inputs)
        inputs.setdefault("apiVersion", api_version(record.type))
        inputs.setdefault("kind", record.type.rsplit(":", 1)[-1])
        objects.append(_ints(inputs))
    return objects


def _ints(value: Any) -> Any:
    """Engine floats back to the integers Kubernetes expects (replicas: 2, not 2.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def render(stacks: list[str], out: Path = OUT) -> list[Path]:
    files = []
    for stack in stacks:
        folder = out / stack
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
        for index, manifest in enumerate(manifests(stack)):
            name = manifest.get("metadata", {}).get("name", "unnamed")
            path = folder / f"{index:03d}-{manifest['kind'].lower()}-{name}.yaml"
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
            files.append(path)
    return files


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: python3.11 -m venv .venv-tools && .venv-tools/bin/pip install "
            "-r tools/requirements-checkov.txt -c tools/requirements-checkov.lock"
        )
    return str(path)


def checkov(args: list[str]) -> int:
    command = [_tool("checkov"), "--skip-download", "--quiet", "--compact", *args]
    print("$", " ".join(command[1:]), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meridian scan", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", help="stacks to render (default: all)")
    args = parser.parse_args(argv)
    stacks = args.stacks or available_stacks()
    files = render(stacks)
    print(f"rendered {len(files)} Kubernetes objects of {len(stacks)} stacks into {OUT.relative_to(ROOT)}")
    dockerfiles = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("workloads/*/Dockerfile"))
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    results = [
        checkov(["--framework", "kubernetes", "-d", str(OUT.relative_to(ROOT))]),
        checkov(["--framework", "dockerfile", *[a for f in dockerfiles for a in ("-f", f)]]) if dockerfiles else 0,
        checkov(["--framework", "github_actions", "-d", ".github/workflows"]),
    ]
    if workflows:
        schema = [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows]
        print("$", " ".join(schema[1:]), flush=True)
        results.append(subprocess.run(schema, cwd=ROOT, check=False).returncode)
    return 1 if any(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
