"""What every benchmark result carries about where and how it ran: the command, the UTC date, the
machine, its load before and after, and the library versions that set the numbers; and how it is written."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def provenance(
    benchmark: str,
    argv: Sequence[str] | None,
    load_before: tuple[float, float, float],
    libraries: dict[str, str],
) -> dict[str, Any]:
    """The head of a result file; `argv`: the arguments given (None: the process's own)."""
    return {
        "benchmark": benchmark,
        "command": f"python bench/{benchmark}.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": platform.python_version(),
            **libraries,
        },
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write a benchmark's result file and show its summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
