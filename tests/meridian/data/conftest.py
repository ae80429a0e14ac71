"""Real object stores on loopback for `meridian data`: moto's S3 server and gcp-storage-emulator,
each reached over HTTP through the same fsspec filesystems the workloads use (as in
tests/workloads/registry/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

# gcsfs 2026.7 defaults to its experimental filesystem, which first asks Google's gRPC storage
# control API for each bucket's layout (hierarchical or zonal); the emulator speaks only the JSON
# API, so that lookup would retry until it times out. The plain GCSFileSystem is what standard
# buckets get after the lookup anyway. Set before anything imports gcsfs.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import fsspec
import pytest
from gcp_storage_emulator import server as emulator_routes
from gcp_storage_emulator.handlers import objects as emulator_objects
from gcp_storage_emulator.server import create_server

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


# The emulator's responses take an HTTPStatus, which has no 499.
CANCELLED = SimpleNamespace(value=499, phrase="Client Closed Request")


def _cancel_resumable_upload(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> None:
    """GCS cancels a resumable upload on DELETE of its session URI and answers 499
    (https://cloud.google.com/storage/docs/performing-resumable-uploads#cancel-upload);
    gcp-storage-emulator answers 501, so this fills that one gap."""
    storage.delete_resumable_file_obj(request.query.get("upload_id")[0])
    response.status = CANCELLED


def _emulate_upload_cancel() -> None:
    for _, route in emulator_routes.HANDLERS:
        methods: dict[str, Any] = route  # method -> handler(request, response, storage)
        if methods.get(emulator_routes.PUT) is emulator_objects.upload_partial:
            methods.setdefault(emulator_routes.DELETE, _cancel_resumable_upload)


@pytest.fixture(scope="session")
def gs_store() -> Iterator[Store]:
    _emulate_upload_cancel()
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        # Port 0: the emulator's HTTP server knows the port it was given.
        port = server._api._httpd.server_address[1]  # pyright: ignore[reportOptionalMemberAccess]
        endpoint = f"http://127.0.0.1:{port}"
        options = {"endpoint_url": endpoint, "token": "anon", "skip_instance_cache": True}
        fs = fsspec.filesystem("gs", **options)

        def make_bucket(name: str, location: str) -> None:
            fs.mkdir(name)
            # The emulator makes every bucket in `US`; its metadata is patched to where a real one would be.
            fs.call("PATCH", "b/{}", name, json={"location": location.upper()})  # pyright: ignore[reportAttributeAccessIssue]

        def unfinished_uploads(bucket: str) -> list[str]:
            # The emulator's upload ids are `<bucket>:<object>:<time>`.
            return [upload for upload in server._storage.resumable if upload.startswith(f"{bucket}:")]

        yield Store("gs", GCP_EU_REGION, endpoint, options, make_bucket, unfinished_uploads)
    finally:
        server.stop()


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")
