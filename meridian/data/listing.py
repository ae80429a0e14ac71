"""What a region's data bucket holds: every object with its size and sha256.

The digest is the one recorded at push time (object metadata); an object pushed by other means
has none, so its bytes are read and hashed. `verify` hashes every object and compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meridian.data.bucket import Bucket
from meridian.data.push import READ_SIZE
from meridian.data.target import DataTarget


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the region's data URL
    size: int
    sha256: str
    recorded: bool  # the digest came from the push's metadata, not from reading the bytes
    intact: bool | None  # with verify: whether the bytes still hash to the recorded digest


def object_sha256(bucket: Bucket, path: str) -> str:
    digest = hashlib.sha256()
    with bucket.fs.open(path, "rb", block_size=READ_SIZE) as source:
        for chunk in iter(lambda: source.read(READ_SIZE), b""):
            assert isinstance(chunk, bytes)  # binary mode; fsspec annotates reads as str | bytes
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Listing:
    location: str  # where the bucket's cloud says it is
    objects: list[StoredObject]


def list_objects(
    target: DataTarget, *, verify: bool = False, storage_options: Mapping[str, Any] | None = None
) -> Listing:
    bucket = Bucket.open(target.url, storage_options)
    location = bucket.location()  # also refuses a bucket that does not exist, rather than listing nothing
    try:
        found: dict[str, dict[str, Any]] = bucket.fs.find(bucket.root, detail=True)  # pyright: ignore[reportAssignmentType]
    except FileNotFoundError:
        found = {}
    objects: list[StoredObject] = []
    for path, info in sorted(found.items()):
        key = path[len(bucket.root) :].lstrip("/")
        recorded = bucket.stored_digest(path, info)
        actual = object_sha256(bucket, path) if verify or recorded is None else None
        objects.append(
            StoredObject(
                key=key,
                size=int(info["size"]),
                sha256=recorded or str(actual),
                recorded=recorded is not None,
                intact=(actual == recorded) if verify and recorded is not None else None,
            )
        )
    return Listing(location=location, objects=objects)
