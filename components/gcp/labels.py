"""GCP labels: lowercase letters, digits, `_` and `-`, at most 63 characters."""

from __future__ import annotations

import re

_INVALID = re.compile(r"[^a-z0-9_-]")


def gcp_labels(tags: dict[str, str]) -> dict[str, str]:
    """The stack's tags as GCP accepts them (`costCenter: CC-1` -> `costcenter: cc-1`)."""
    return {_INVALID.sub("-", k.lower())[:63]: _INVALID.sub("-", v.lower())[:63] for k, v in tags.items()}
