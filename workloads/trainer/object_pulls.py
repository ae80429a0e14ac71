"""How soon Flower retries pulling a message's contents that have not arrived yet.

Flower 1.42 hands a message on before all of its contents (the arrays, in chunks) are there:
a SuperNode creates the ClientApp task as soon as a message comes in and only then pulls the
model from the SuperLink, so that a cold ClientApp process starts up meanwhile; the SuperLink
lists a reply to the ServerApp while the SuperNode is still pushing its arrays. Whoever pulls
then finds an object missing and retries after 1 s, doubling up to 10 s (Flower's
PULL_INITIAL_BACKOFF and PULL_BACKOFF_CAP, not configurable), for a transfer that takes a
fraction of a second on a fast network: a warm ClientApp sleeps 1 s, often 1 + 2 s, per
message, and the server ~1 s per round. `retry_sooner` rebinds one Flower module's pull to the
same function with shorter waits; each retry is one small request to the local SuperNode's or
SuperLink's own API. Flower also gives up on an object after 500 tries, which its backoff
stretches over ~80 minutes and short waits would spend in under a minute: a large model on a
slow link would fail. So the rebound pull counts no tries and gives up only after
`give_up_after` seconds: Flower's time limit (PULL_MAX_TIME, 2 hours) unless the caller has a
deadline of its own (the ServerApp: its round timeout; then the reply is an error reply and the
round goes on without it).
"""

from __future__ import annotations

import functools
from types import ModuleType

from flwr.supercore.constant import PULL_BACKOFF_CAP, PULL_INITIAL_BACKOFF, PULL_MAX_TIME
from flwr.supercore.inflatable import inflatable_utils

PULLS = ("pull_objects", "pull_and_inflate_object_from_tree")  # Flower's, both retry the same way
LONGEST_WAIT = 0.1  # seconds between retries at most


def retry_sooner(
    module: ModuleType,
    pull: str,
    first_wait: float,
    longest_wait: float = LONGEST_WAIT,
    give_up_after: float = PULL_MAX_TIME,
) -> None:
    """Make `module.<pull>` retry a missing object after `first_wait` seconds, doubling up to
    `longest_wait` (or `first_wait`, if longer; never later than Flower would), until
    `give_up_after` seconds have passed."""
    if pull not in PULLS:
        raise ValueError(f"{pull!r} is not one of Flower's pulls: {', '.join(PULLS)}")
    if not hasattr(module, pull):
        raise ValueError(f"{module.__name__} has no {pull}: the Flower version changed how it pulls")
    first_wait = min(first_wait, PULL_INITIAL_BACKOFF)  # never later than Flower's own
    longest_wait = min(max(first_wait, longest_wait), PULL_BACKOFF_CAP)
    function = getattr(inflatable_utils, pull)
    waits = {
        "initial_backoff": first_wait,
        "backoff_cap": longest_wait,
        "max_tries_per_object": None,
        "max_time": give_up_after,
    }
    setattr(module, pull, functools.partial(function, **waits))
