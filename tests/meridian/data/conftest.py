"""Real object stores on loopback for `meridian data`: moto's S3 server and gcp-storage-emulator,
each reached over HTTP through the same fsspec filesystems the workloads use (as in
tests/workloads/registry/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import pytest

from tests.gcs_emulator import gcs_emulator
from tests.meridian.data.stores import AWS_EU_REGION, GCP_EU_REGION, Store
from tests.moto_s3 import moto_s3


@pytest.fixture(scope="session")
def s3_store() -> Iterator[Store]:
    with moto_s3() as s3:

        def make_bucket(name: str, location: str) -> None:
            extra = {} if location == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": location}}
            s3.client.create_bucket(Bucket=name, **extra)

        def unfinished_uploads(bucket: str) -> list[str]:
            return [u["Key"] for u in s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

        yield Store("s3", AWS_EU_REGION, s3.endpoint, s3.options, make_bucket, unfinished_uploads)


@pytest.fixture(scope="session")
def gs_store() -> Iterator[Store]:
    with gcs_emulator() as gcs:
        fs = fsspec.filesystem("gs", **gcs.options)

        def make_bucket(name: str, location: str) -> None:
            fs.mkdir(name)
            # The emulator makes every bucket in `US`; its metadata is patched to where a real one would be.
            fs.call("PATCH", "b/{}", name, json={"location": location.upper()})  # pyright: ignore[reportAttributeAccessIssue]

        def unfinished_uploads(bucket: str) -> list[str]:
            # The emulator's upload ids are `<bucket>:<object>:<time>`.
            return [upload for upload in gcs.server._storage.resumable if upload.startswith(f"{bucket}:")]

        yield Store("gs", GCP_EU_REGION, gcs.endpoint, gcs.options, make_bucket, unfinished_uploads)


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")
