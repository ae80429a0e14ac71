"""What the `meridian data` tests share: the stack and regions they push to, an emulated object store,
and the stack outputs that name its buckets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

# A stack of the repository with regions of both clouds and two zones (stacks/Pulumi.multicloud-prod.yaml).
STACK = "multicloud-prod"
AWS_EU_REGION = "eu-central-1"
GCP_EU_REGION = "europe-west4"


@dataclass(frozen=True)
class Store:
    """One emulated cloud: how to reach it, and how to make a bucket at a given location."""

    scheme: str
    region: str  # the stack's region whose data bucket lives here
    endpoint: str
    options: dict[str, Any]  # fsspec storage options
    make_bucket: Callable[[str, str], None]  # (name, location)
    unfinished_uploads: Callable[[str], list[str]]  # a bucket's multipart / resumable uploads in progress

    def fs(self) -> fsspec.AbstractFileSystem:
        """A fresh filesystem (no listing cache), to see what any other client would see."""
        return fsspec.filesystem(self.scheme, **{**self.options, "skip_instance_cache": True})


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_outputs(path: Path, data_urls: dict[str, str]) -> Path:
    """What `pulumi stack output --json` prints, reduced to what `meridian data` reads."""
    path.write_text(json.dumps({"regions": {region: {"dataUrl": url} for region, url in data_urls.items()}}))
    return path
