"""A region's data bucket through fsspec, the same way the workloads read it, plus the three things
S3 and GCS spell differently: where the bucket lives, how an object carries its sha256, and how
to read it back.

Filesystems come from `fsspec.core.url_to_fs(url, **storage_options)`, as in
workloads/registry/store.py and workloads/tasks/sync.py: credentials and endpoints come from
the usual environment (the AWS chain, `AWS_ENDPOINT_URL_S3`; Google's default credentials,
`STORAGE_EMULATOR_HOST`) or from `storage_options`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meridian.data.errors import DataRefused

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

# The fsspec implementation each scheme needs (as workloads/tasks/sync.py names them).
PACKAGES = {"s3": "s3fs", "gs": "gcsfs"}
# User metadata key holding the object's sha256 (S3 `x-amz-meta-sha256`, GCS `metadata.sha256`).
DIGEST_KEY = "sha256"


@dataclass(frozen=True)
class Bucket:
    fs: AbstractFileSystem
    scheme: str  # "s3" or "gs"
    name: str
    root: str  # bucket[/prefix], as fsspec paths are written

    @classmethod
    def open(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> Bucket:
        scheme = url.split("://", 1)[0]
        if scheme not in PACKAGES:
            raise DataRefused(f"{url}: not an s3:// or gs:// bucket")
        try:
            import fsspec

            fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except ImportError as err:
            raise DataRefused(
                f"{url}: {scheme}:// needs fsspec and {PACKAGES[scheme]}, not installed in {sys.executable} "
                f"({err.msg}): run this with .venv-workloads/bin/python (built by `make venv`)"
            ) from err
        root = root.rstrip("/")
        return cls(fs=fs, scheme=scheme, name=root.split("/", 1)[0], root=root)

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://{path or self.root}"

    def location(self) -> str:
        """The bucket's location as its cloud reports it: an AWS region (GetBucketLocation), or a
        GCS location (bucket metadata: a region, dual-region or multi-region, upper case)."""
        try:
            if self.scheme == "s3":
                answer = self.fs.call_s3("get_bucket_location", Bucket=self.name)  # pyright: ignore[reportAttributeAccessIssue]
                # GetBucketLocation answers null for us-east-1 and `EU` for buckets made as eu-west-1.
                constraint = answer.get("LocationConstraint") or "us-east-1"
                return "eu-west-1" if constraint == "EU" else str(constraint)
            metadata = self.fs.call("GET", "b/{}", self.name, json_out=True)  # pyright: ignore[reportAttributeAccessIssue]
            return str(metadata["location"])
        except FileNotFoundError:
            raise DataRefused(f"bucket {self.url(self.name)} does not exist (or this identity cannot see it)") from None
        except PermissionError as err:
            raise DataRefused(
                f"bucket {self.url(self.name)}: this identity may not read its location ({err})"
            ) from None

    def write_options(self, sha256: str) -> dict[str, Any]:
        """`fs.open(..., "wb", **options)` so the object carries its digest from the first byte."""
        if self.scheme == "s3":
            return {"Metadata": {DIGEST_KEY: sha256}}  # s3fs passes it to CreateMultipartUpload / PutObject
        return {"metadata": {DIGEST_KEY: sha256}}

    def stored_digest(self, path: str, info: Mapping[str, Any]) -> str | None:
        """The sha256 recorded when the object was pushed (None: pushed by something else)."""
        # S3 listings carry no user metadata: one HEAD per object. GCS listings do.
        metadata = self.fs.metadata(path) if self.scheme == "s3" else info.get("metadata") or {}  # pyright: ignore[reportAttributeAccessIssue]
        value = metadata.get(DIGEST_KEY)
        return str(value) if value else None
