"""`python -m meridian <command> ...`: each command lives in its own module with `main(argv)`."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "preview": ("meridian.preview", "run the Pulumi program offline under mocks"),
    "local": ("meridian.local.cli", "the whole fleet as processes on this machine (up/status/down)"),
    "data": ("meridian.data.cli", "push a region's data to its own bucket, list it with digests"),
    "policy": ("meridian.policy", "run the policy pack offline over a stack or a saved deployment"),
    "cost": ("meridian.cost", "$/hour and $/month at min and max scale, per region and kind"),
    "plan": ("meridian.plan.cli", "the global node layout from a demand file (latency, residency, cost), as a stack"),
    "diff": ("meridian.diff", "offline preview at a git ref vs the working tree, as Markdown"),
    "scan": ("meridian.scan", "checkov over rendered manifests, Dockerfiles and workflows"),
    "monitoring": ("meridian.monitoring.cli", "generate monitoring/: alert rules, promtool tests, runbook, dashboards"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        lines = [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
        print("usage: python -m meridian <command> [args]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
