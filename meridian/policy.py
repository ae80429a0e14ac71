"""`python -m meridian policy`: run the policy pack offline over a stack or a saved deployment.

  check STACK                   run the program under mocks, then every rule over every resource
  check [STACK] --resources F   check a JSON file instead: `meridian preview --json`,
                                `pulumi stack export` or `pulumi preview --json` output
  config STACK                  the pack's config for the stack, for the real CLI:
                                `pulumi preview --policy-pack policy --policy-pack-config F`
  rules                         the rules: name, severity, enforcement, what each checks

Exit status: 0 when no mandatory rule is violated, 1 when one is, 2 on a usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from components.catalog import REGIONS, Cloud
from components.config import ConfigError, StackConfig, available_stacks, load_stack
from components.k8s.monitoring import MONITORING_NAMESPACE
from meridian.mocks import ProgramError
from meridian.preview import preview_stack
from policy.harness import PolicyConfigError, Report, Resource, make_urn, run_pack
from policy.rules import POLICIES
from policy.rules.meridian.residency import RESIDENCY_OF
from workloads.contract import METRICS_PORT, SUPERLINK_CONTROL_PORT, TRAINER_METRICS_PORT

PROJECT = "meridian"
SEVERITY_ORDER = ("critical", "high", "medium", "low", "unspecified")


class ResourcesFileError(ValueError):
    """The --resources file is not one of the three supported formats."""


# -- the pack's config for a stack --------------------------------------------------------


def registries(config: StackConfig) -> list[str]:
    """Image reference patterns of the stack's own registries, one per region."""
    patterns = []
    for region in config.regions:
        if region.cloud is Cloud.AWS:
            patterns.append(f"*.dkr.ecr.{region.name}.amazonaws.com/*")
        elif region.cloud is Cloud.GCP:
            patterns.append(f"{region.name}-docker.pkg.dev/*")
        elif region.kubernetes is not None:
            patterns.append(f"{region.kubernetes.image_registry}/*")
    return sorted(set(patterns))


# The rules a privileged cluster add-on's namespace is exempt from.
PRIVILEGED_ADDON_RULES = ("k8s-namespace-pod-security-restricted", "k8s-namespace-default-deny")


def pack_config(config: StackConfig) -> dict[str, Any]:
    """The stack's limits and facts as policy config (the `--policy-pack-config` file's shape)."""
    residency = {
        **RESIDENCY_OF,
        **{name: zone.value for regions in REGIONS.values() for name, zone in regions.items()},
        **{region.name: region.residency.value for region in config.regions},
    }
    return {
        "meridian-gpu-allowlist": {"gpuAllowlist": [a.value for a in config.limits.gpu_allowlist]},
        "meridian-cost-ceiling": {
            "maxGpus": config.limits.max_gpus,
            "maxUsdPerHour": config.limits.max_usd_per_hour,
            "homeRegion": config.home,
        },
        "meridian-data-residency": {"residencyOf": residency},
        "meridian-trainer-reads-own-region": {"residencyOf": residency},
        "meridian-models-stay-in-zone": {"residencyOf": residency},
        "k8s-image-from-stack-registries": {"allowedRegistries": registries(config)},
        "meridian-flower-control-api-private": {"controlPort": SUPERLINK_CONTROL_PORT},
        "meridian-metrics-private": {"metricsPorts": [METRICS_PORT, TRAINER_METRICS_PORT]},
        # node-exporter and the DCGM exporter need the host (components/k8s/monitoring.py); the
        # namespace holds the chart's pods only, none of Meridian's.
        **{rule: {"exemptNamespaces": [MONITORING_NAMESPACE]} for rule in PRIVILEGED_ADDON_RULES},
    }


# -- resources from the offline preview and from saved JSON --------------------------------


def from_preview(stack: str, records: list[dict[str, Any]]) -> list[Resource]:
    """`meridian preview --json` resources (or Inventory records as dicts) as the engine sends them.

    Records name their parent and provider by name; names repeat across types (a forwarding
    rule and its proxy), so a parent is looked up among components first.
    """
    components = {r["name"]: r for r in records if r.get("custom") is False}
    by_name = {r["name"]: r for r in records}

    def parent_of(record: dict[str, Any]) -> dict[str, Any] | None:
        name = record.get("parent")
        return components.get(name) or by_name.get(name) if name else None

    def urn_of(record: dict[str, Any]) -> str:
        chain, parent, seen = [record["type"]], parent_of(record), set()
        while parent is not None and id(parent) not in seen:
            seen.add(id(parent))
            chain.insert(0, parent["type"])
            parent = parent_of(parent)
        return make_urn(stack, PROJECT, chain, record["name"])

    providers = {
        r["name"]: Resource(r["type"], r["name"], r.get("inputs") or {}, urn_of(r))
        for r in records
        if r["type"].startswith("pulumi:providers:")
    }
    resources = []
    for r in records:
        parent = parent_of(r)
        resources.append(
            Resource(
                r["type"],
                r["name"],
                r.get("inputs") or {},
                urn_of(r),
                parent=urn_of(parent) if parent is not None else None,
                provider=providers.get(r.get("provider") or ""),
            )
        )
    return resources


def _from_states(states: list[dict[str, Any]]) -> list[Resource]:
    """Engine states (`pulumi stack export` resources, preview steps' newState)."""
    providers: dict[str, Resource] = {}
    for state in states:
        if state["type"].startswith("pulumi:providers:"):
            name = state["urn"].rsplit("::", 1)[-1]
            resource = Resource(state["type"], name, state.get("inputs") or {}, state["urn"])
            providers[state["urn"]] = resource
    resources = []
    for state in states:
        provider_ref = str(state.get("provider") or "")
        provider_urn = provider_ref.rsplit("::", 1)[0] if provider_ref else ""
        resources.append(
            Resource(
                state["type"],
                state["urn"].rsplit("::", 1)[-1],
                state.get("inputs") or state.get("outputs") or {},
                state["urn"],
                parent=state.get("parent") or None,
                provider=providers.get(provider_urn),
            )
        )
    return resources


def _stack_of_urn(urn: str) -> str:
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def load_resources(path: Path) -> tuple[str, list[Resource]]:
    """(stack name, resources) from any of the three formats; a clear error for anything else."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResourcesFileError(f"{path}: cannot read JSON: {err}") from None
    if isinstance(document, dict) and isinstance(document.get("resources"), list) and "stack" in document:
        return str(document["stack"]), from_preview(str(document["stack"]), document["resources"])
    if isinstance(document, dict) and isinstance(document.get("deployment"), dict):
        states = document["deployment"].get("resources") or []
        stack = _stack_of_urn(states[0]["urn"]) if states else ""
        return stack, _from_states(states)
    if isinstance(document, dict) and isinstance(document.get("steps"), list):
        states = [s["newState"] for s in document["steps"] if s.get("newState")]
        stack = _stack_of_urn(states[0]["urn"]) if states else ""
        return stack, _from_states(states)
    raise ResourcesFileError(
        f"{path}: not `meridian preview --json` ({{stack, resources}}), `pulumi stack export` "
        "({deployment: {resources}}) or `pulumi preview --json` ({steps}) output"
    )


# -- running and printing -------------------------------------------------------------------


def check_stack(stack: str, config: dict[str, Any] | None = None) -> Report:
    """Run the stack's program under mocks, then the pack with `config` (default: the stack's)."""
    given = pack_config(load_stack(stack)) if config is None else config
    inventory = preview_stack(stack)
    return run_pack(POLICIES, from_preview(stack, [r.to_json() for r in inventory.resources]), given)


def print_report(report: Report, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    if report.violations:
        table = Table(title=title, show_lines=False)
        for column in ("severity", "enforcement", "policy", "resource", "message"):
            table.add_column(column, overflow="fold")
        ordered = sorted(report.violations, key=lambda v: (SEVERITY_ORDER.index(v.severity), v.policy, v.urn))
        for v in ordered:
            table.add_row(v.severity, v.enforcement, v.policy, v.urn.rsplit("::", 1)[-1] or "(stack)", v.message)
        console.print(table)
    for note in report.unknown:
        console.print(f"[yellow]{note.policy}[/]: {note.message} ({note.urn.rsplit('::', 1)[-1]})")
    counts = Counter(v.severity for v in report.violations)
    summary = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts[s]) or "none"
    console.print(f"{title}: {len(POLICIES)} rules, violations: {summary}; mandatory: {len(report.mandatory)}")


def rules_markdown() -> str:
    lines = ["| rule | severity | enforcement | what it checks |", "| --- | --- | --- | --- |"]
    for p in POLICIES:
        severity = p.severity.value if p.severity else "-"
        level = p.enforcement_level.value if p.enforcement_level else "-"
        lines.append(f"| `{p.name}` | {severity} | {level} | {p.description} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meridian policy", description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check a stack (or a saved deployment) against every rule")
    check.add_argument("stack", nargs="?", help="stack name: stacks/Pulumi.<stack>.yaml")
    check.add_argument("--resources", type=Path, help="check this JSON file instead of running the program")
    check.add_argument("--config", type=Path, help="a --policy-pack-config file (default: the stack's own)")
    config_command = commands.add_parser("config", help="print the pack's config for a stack")
    config_command.add_argument("stack")
    commands.add_parser("rules", help="print the rules as a Markdown table")
    args = parser.parse_args(argv)

    try:
        if args.command == "rules":
            print(rules_markdown())
            return 0
        if args.command == "config":
            print(json.dumps(pack_config(load_stack(args.stack)), indent=2, sort_keys=True))
            return 0
        if args.resources is None and args.stack is None:
            parser.error("check needs a STACK, or --resources FILE")
        given = json.loads(args.config.read_text()) if args.config else None
        if args.resources is not None:
            stack, resources = load_resources(args.resources)
            stack = args.stack or stack
            known = given if given is not None else (pack_config(load_stack(stack)) if _is_stack(stack) else {})
            report = run_pack(POLICIES, resources, known)
            title = f"policy check: {args.resources}"
        else:
            report = check_stack(args.stack, given)
            title = f"policy check: stack {args.stack}"
    except (ConfigError, PolicyConfigError, ResourcesFileError, ProgramError) as err:
        print(err, file=sys.stderr)
        return 2
    print_report(report, title)
    return 1 if report.mandatory else 0


def _is_stack(stack: str) -> bool:
    return stack in available_stacks()
