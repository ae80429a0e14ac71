"""The local run's report: a summary table on the terminal, `report.md` with PNG plots, and
`report.json` with the same numbers for scripts and tests. A later canary drill on the running
fleet (`meridian local canary`) replaces the report's `canary` section and its plot."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from meridian.local.latency import LAST_MILE_MS, METRO_TO_REGION_MS, METROS
from meridian.local.load import LoadResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from rich.table import Table


@dataclass(frozen=True)
class RunFacts:
    stack: str
    task: str
    strategy: str
    compression: str
    parameters: int
    rounds: list[dict[str, Any]]  # the trainer's per-round records
    localization: dict[str, dict[str, Any]]  # region -> the localization report
    loaded: dict[str, dict[str, str]]  # server/edge -> version, region, variant it says it serves
    timings: dict[str, float]  # phase -> seconds
    canary: dict[str, Any]  # the drill's section (meridian/local/canary.py), or {"skipped": why}
    # phase -> (start, end) in seconds since the fleet's start: phases overlap, so when each ran
    # tells which ones the path to serving waits for ("serving": every server and edge ready).
    timeline: dict[str, tuple[float, float]] = field(default_factory=dict)
    started_at: float | None = None  # the fleet's start, Unix time (bench/local.py: what came before)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(facts: RunFacts, load: LoadResult) -> dict[str, Any]:
    last = facts.rounds[-1] if facts.rounds else {}
    fp32_bytes = [4 * facts.parameters * len(r.get("aggregated", []) + r.get("rejected", [])) for r in facts.rounds]
    sent = [int(r.get("uplink_payload_bytes", 0)) for r in facts.rounds]
    served = [o for o in load.outcomes if o.error is None]
    per_metro = {}
    for metro in METROS:
        mine = [o for o in served if o.metro == metro]
        latencies = [o.latency_ms for o in mine]
        per_metro[metro] = {
            "site": mine[0].site if mine else None,
            "requests": len(mine),
            "p50_ms": _percentile(latencies, 50),
            "p99_ms": _percentile(latencies, 99),
            "accuracy": sum(o.correct for o in mine) / len(mine) if mine else None,
        }
    at_edge = [o for o in served if o.served_by == "edge"]
    return {
        "stack": facts.stack,
        "task": facts.task,
        "strategy": facts.strategy,
        "compression": facts.compression,
        "rounds": len(facts.rounds),
        "global_accuracy": (last.get("global") or {}).get("accuracy"),
        "region_accuracy": {region: part.get("accuracy") for region, part in (last.get("regions") or {}).items()},
        # DP-SGD (federation.privacy.dp): each region's spent ε, from the last round it trained in.
        "epsilon_spent": {k: v for r in facts.rounds for k, v in (r.get("epsilon") or {}).items()} or None,
        "uplink_bytes_per_round": sent,
        "uplink_fp32_bytes_per_round": fp32_bytes,
        "uplink_reduction": (sum(fp32_bytes) / sum(sent)) if sum(sent) else None,
        "localized": facts.localization,
        "loaded": facts.loaded,
        "requests": len(load.outcomes),
        "failed_requests": len(load.errors),
        "errors": [o.error for o in load.errors[:5]],
        "answered_at_edge": len(at_edge),
        "answered_by_region": len(served) - len(at_edge),
        "serving_accuracy": sum(o.correct for o in served) / len(served) if served else None,
        "latency_by_metro": per_metro,
        "timings_seconds": facts.timings,
        "started_at": facts.started_at,
        "timeline_seconds": {phase: {"start": start, "end": end} for phase, (start, end) in facts.timeline.items()},
        "canary": facts.canary,
        "latency_model": {
            "last_mile_ms": LAST_MILE_MS,
            "metro_to_region_ms": METRO_TO_REGION_MS,
            "source": "meridian/local/latency.py",
        },
    }


def _accuracy(part: dict[str, Any] | None) -> float:
    """A round's accuracy for a plot: NaN where the round has none, which matplotlib leaves as a gap."""
    accuracy = (part or {}).get("accuracy")
    return float("nan") if accuracy is None else float(accuracy)


def _convergence(ax: Axes, summary: dict[str, Any], facts: RunFacts, load: LoadResult) -> None:
    rounds = [r["round"] for r in facts.rounds]
    ax.plot(rounds, [_accuracy(r.get("global")) for r in facts.rounds], "k-o", label="global")
    regions = sorted({region for r in facts.rounds for region in (r.get("regions") or {})})
    for region in regions:
        ax.plot(
            rounds,
            [_accuracy((r.get("regions") or {}).get(region)) for r in facts.rounds],
            "--",
            label=region,
        )
    ax.set(xlabel="round", ylabel="test accuracy", title="Convergence")


def _uplink_bytes(ax: Axes, summary: dict[str, Any], facts: RunFacts, load: LoadResult) -> None:
    width = 0.4
    idx = np.arange(len(facts.rounds))
    ax.bar(idx - width / 2, np.array(summary["uplink_fp32_bytes_per_round"]) / 1024, width, label="none (fp32)")
    ax.bar(idx + width / 2, np.array(summary["uplink_bytes_per_round"]) / 1024, width, label=facts.compression)
    ax.set_xticks(idx, [str(r["round"]) for r in facts.rounds])
    ax.set(xlabel="round", ylabel="uplink KiB (all regions)", title="Uplink bytes per round by compression")


def _latency(ax: Axes, summary: dict[str, Any], facts: RunFacts, load: LoadResult) -> None:
    served = [o for o in load.outcomes if o.error is None]
    for label, chosen in (("answered at the edge", "edge"), ("answered by a region", "region")):
        values = [o.latency_ms for o in served if o.served_by == chosen]
        if values:
            ax.hist(values, bins=40, alpha=0.6, label=f"{label} ({len(values)})")
    ax.set(
        xlabel="user-perceived latency, ms (measured + modelled RTT)",
        ylabel="requests",
        title="Latency: edge vs region",
    )


# Each plot's file and what draws it; every one gets the same size, legend and resolution.
_PLOTS = {"convergence.png": _convergence, "bytes.png": _uplink_bytes, "latency.png": _latency}
CANARY_PLOT = "canary.png"


def _plots(summary: dict[str, Any], facts: RunFacts, load: LoadResult, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, draw in _PLOTS.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        draw(ax, summary, facts, load)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
    plt.close("all")
    return list(_PLOTS)


def _canary_plot(canary: dict[str, Any], out_dir: Path) -> list[str]:
    """The traffic split over the drill, as the region's server reported it to Prometheus."""
    if not canary.get("traffic_percent"):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for version, points in sorted(canary["traffic_percent"].items()):
        role = "candidate" if version == canary["candidate"] else "stable" if version == canary["stable"] else ""
        ax.step([t for t, _ in points], [v for _, v in points], where="post", label=f"{version} {role}".strip())
    for event, style in (("entered", ":"), ("decided", "--")):
        ax.axvline(canary["timeline"][event], color="grey", linestyle=style, linewidth=1, label=f"candidate {event}")
    ax.set(
        xlabel="seconds into the drill",
        ylabel="% of traffic",
        title=f"Canary in {canary['region']}: {canary['kind']} candidate {canary['decision']}",
        ylim=(0, 105),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / CANARY_PLOT, dpi=110)
    plt.close(fig)
    return [CANARY_PLOT]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def markdown(summary: dict[str, Any], plots: list[str]) -> str:
    lines = [
        f"# Meridian local run: stack `{summary['stack']}`",
        "",
        (
            f"Task `{summary['task']}`, strategy `{summary['strategy']}`, uplink compression "
            f"`{summary['compression']}`, {summary['rounds']} rounds."
        ),
        "",
        "## Training",
        "",
        f"- global test accuracy: **{_pct(summary['global_accuracy'])}**",
        *[f"- {region}: {_pct(acc)}" for region, acc in sorted(summary["region_accuracy"].items())],
        *[
            f"- {region} spent privacy budget ε = {e:.3f}"
            for region, e in sorted((summary["epsilon_spent"] or {}).items())
        ],
        f"- uplink bytes: {sum(summary['uplink_bytes_per_round']):,} sent vs "
        f"{sum(summary['uplink_fp32_bytes_per_round']):,} uncompressed fp32 "
        f"({summary['uplink_reduction']:.1f}x fewer)"
        if summary["uplink_reduction"]
        else "- uplink bytes: -",
        "",
        "## Localized models",
        "",
        "| region | variant | size KiB | accuracy | CPU ms, batch 1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for region, report in sorted(summary["localized"].items()):
        for variant, row in sorted((report.get("variants") or {}).items()):
            lines.append(
                f"| {region} | {variant} | {row.get('size_bytes', 0) / 1024:.0f} | "
                f"{_pct(row.get('accuracy'))} | {_ms(row.get('latency_ms_batch1'))} |"
            )
    lines += [
        "",
        "## Loaded artifacts",
        "",
        "What each server and edge reports serving (its V2 model metadata).",
        "",
        "| process | version | region | variant |",
        "| --- | --- | --- | --- |",
        *[
            f"| {name} | {row['version']} | {row['region']} | {row['variant']} |"
            for name, row in sorted(summary["loaded"].items())
        ],
        "",
        "## Serving",
        "",
        f"- requests: {summary['requests']}, failed: **{summary['failed_requests']}**",
        f"- answered at the edge: {summary['answered_at_edge']}, by a region: {summary['answered_by_region']}",
        f"- accuracy of the answers: {_pct(summary['serving_accuracy'])}",
        "",
        "| user metro | routed to | requests | p50 ms | p99 ms | accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for metro, row in summary["latency_by_metro"].items():
        lines.append(
            f"| {METROS[metro].city} | {row['site']} | {row['requests']} | {_ms(row['p50_ms'])} | "
            f"{_ms(row['p99_ms'])} | {_pct(row['accuracy'])} |"
        )
    lines += [
        "",
        (
            "Latency is the measured call on this machine plus modelled network round trips "
            "(inter-region RTTs as measured between AWS regions; see meridian/local/latency.py)."
        ),
        "",
        *_canary_markdown(summary["canary"]),
        *[f"![{p}]({p})" for p in plots],
        "",
        "Phases (s since the start, start-end): "
        + ", ".join(f"{k} {v['start']:.1f}-{v['end']:.1f}" for k, v in summary["timeline_seconds"].items()),
        "",
    ]
    return "\n".join(lines)


def _canary_markdown(canary: dict[str, Any]) -> list[str]:
    lines = ["## Canary drill", ""]
    if "skipped" in canary:
        return [*lines, f"Not run: {canary['skipped']}.", ""]
    lines += [
        (
            f"A **{canary['kind']}** candidate `{canary['candidate']}` against stable `{canary['stable']}` in "
            f"{canary['region']}: **{canary['decision']}** {canary['seconds_to_decide']:.0f} s after it entered "
            f"(due within {canary['deadline_seconds']} s: one window plus one interval). Reason: {canary['reason']}."
        ),
        "",
        "| version | requests seen by users | accuracy seen by users |",
        "| --- | --- | --- |",
        *[
            f"| {version} | {row['requests']} | {_pct(row['accuracy'])} |"
            for version, row in sorted(canary["seen_by_users"].items())
        ],
        "",
        "What the controller compared over its window (its queries, read when it decided):",
        "",
        "| version | requests | error rate | p99 ms | accuracy (labels) | agreement with stable (rows) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for role in ("stable", "candidate"):
        m = canary["metrics"][role]
        p99 = None if m["p99_seconds"] is None else 1000 * m["p99_seconds"]
        agreement = f"{_pct(m['agreement'])} ({m['agree'] + m['disagree']:.0f})" if role == "candidate" else "-"
        lines.append(
            f"| {canary[role]} ({role}) | {m['requests']:.0f} | {_pct(m['error_rate'])} | {_ms(p99)} | "
            f"{_pct(m['accuracy'])} ({m['correct'] + m['incorrect']:.0f}) | {agreement} |"
        )
    return [*lines, "", f"The controller's log line: {canary['evidence']}", ""]


def write_report(facts: RunFacts, load: LoadResult, out_dir: Path) -> dict[str, Any]:
    summary = summarize(facts, load)
    plots = _plots(summary, facts, load, out_dir) + _canary_plot(summary["canary"], out_dir)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    (out_dir / "report.md").write_text(markdown(summary, plots))
    return summary


def update_canary(out_dir: Path, canary: dict[str, Any]) -> dict[str, Any]:
    """Replace the report's canary section (a drill on the running fleet) and its plot."""
    summary = json.loads((out_dir / "report.json").read_text())
    summary["canary"] = canary
    (out_dir / CANARY_PLOT).unlink(missing_ok=True)
    plots = list(_PLOTS) + _canary_plot(canary, out_dir)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    (out_dir / "report.md").write_text(markdown(summary, plots))
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Meridian local run")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("global accuracy", _pct(summary["global_accuracy"]))
    for region, acc in sorted(summary["region_accuracy"].items()):
        table.add_row(f"  {region}", _pct(acc))
    for region, spent in sorted((summary["epsilon_spent"] or {}).items()):
        table.add_row(f"  {region} spent ε", f"{spent:.3f}")
    if summary["uplink_reduction"]:
        table.add_row(
            f"uplink bytes ({summary['compression']} vs fp32)",
            f"{sum(summary['uplink_bytes_per_round']):,} vs {sum(summary['uplink_fp32_bytes_per_round']):,} "
            f"({summary['uplink_reduction']:.1f}x)",
        )
    table.add_row("requests at the edge / region", f"{summary['answered_at_edge']} / {summary['answered_by_region']}")
    table.add_row("serving accuracy", _pct(summary["serving_accuracy"]))
    table.add_row("failed requests", str(summary["failed_requests"]))
    print_canary(summary["canary"], table)
    console.print(table)
    loaded = Table(title="Artifacts loaded (as each process reports)")
    for column in ("process", "version", "region", "variant"):
        loaded.add_column(column)
    for name, row in sorted(summary["loaded"].items()):
        loaded.add_row(name, row["version"], row["region"], row["variant"])
    console.print(loaded)
    latency = Table(title="Latency per user metro (measured + modelled RTT)")
    for column in ("metro", "routed to", "requests", "p50 ms", "p99 ms"):
        latency.add_column(column)
    for metro, row in summary["latency_by_metro"].items():
        latency.add_row(
            METROS[metro].city, str(row["site"]), str(row["requests"]), _ms(row["p50_ms"]), _ms(row["p99_ms"])
        )
    console.print(latency)


def print_canary(canary: dict[str, Any], table: Table) -> None:
    if "skipped" in canary:
        table.add_row("canary drill", f"not run: {canary['skipped']}")
        return
    table.add_row(
        f"canary ({canary['kind']} {canary['candidate']})",
        f"{canary['decision']} after {canary['seconds_to_decide']:.0f} s (due within {canary['deadline_seconds']} s)",
    )


def print_canary_summary(canary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Canary drill")
    table.add_column("what")
    table.add_column("value", justify="right")
    print_canary(canary, table)
    if "skipped" not in canary:
        table.add_row("reason", str(canary["reason"]))
    Console().print(table)
