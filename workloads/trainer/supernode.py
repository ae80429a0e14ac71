"""Flower's `flower-supernode`, with its waits between polls bounded by $MERIDIAN_FLEET_POLL_SECONDS.

    MERIDIAN_FLEET_POLL_SECONDS=0.1 python -m workloads.trainer.supernode <flower-supernode flags>

Flower 1.42's SuperNode sleeps a fixed 3 s after every poll of the SuperLink that found no
message, and 0.5 s between checks for its ClientApp's reply; neither is configurable. After
sending a reply a node polls at once, finds nothing (the server is still waiting for the
other regions), and then sleeps the full 3 s: on a fast network that sleep is most of every
round. This entry point runs Flower's own command unchanged except for those sleeps, which it
caps at the given interval (unset: Flower's own), and its 1 s first retry of a message
whose contents are still arriving at the SuperLink (object_pulls.py), which it starts at the
same interval. Each poll is one authenticated HTTPS request to the SuperLink, so the interval
trades idle requests for round latency.
"""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import flwr.supernode.start_client_internal as node_loop
from flwr.supernode.cli import flower_supernode

from workloads.contract import ENV_FLEET_POLL_SECONDS
from workloads.trainer.object_pulls import retry_sooner


def poll_interval(environ: dict[str, str] | os._Environ[str]) -> float | None:
    """The configured cap in seconds, or None (Flower's own waits); ValueError names the variable."""
    raw = environ.get(ENV_FLEET_POLL_SECONDS)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0.01 <= seconds <= 60:
        raise ValueError(f"{ENV_FLEET_POLL_SECONDS}={raw!r} must be a number of seconds between 0.01 and 60")
    return seconds


FLOWER_FLEET_POLL = 3.0  # the loop's sleep after an empty poll of the SuperLink; its others check its own memory
LOCAL_CHECK = 0.02  # seconds between checks of the node's own state (a dict lookup, no request)


def _cap(wait: float, poll: float) -> float:
    return poll if wait >= FLOWER_FLEET_POLL else min(poll, LOCAL_CHECK)


def cap_waits(seconds: float) -> None:
    """Bound every sleep of Flower's SuperNode main loop (the only use it makes of `time`), and
    its retries of a message's contents not yet at the SuperLink (object_pulls.py)."""
    node_loop.time = SimpleNamespace(sleep=lambda wait: time.sleep(min(wait, _cap(wait, seconds))))  # type: ignore[assignment]
    retry_sooner(node_loop, "pull_objects", seconds)


def main() -> None:
    try:
        seconds = poll_interval(os.environ)
    except ValueError as err:
        sys.exit(f"supernode: {err}")
    if seconds is not None:
        cap_waits(seconds)
    flower_supernode()


if __name__ == "__main__":
    main()
