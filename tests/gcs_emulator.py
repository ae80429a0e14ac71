"""gcp-storage-emulator on loopback (real HTTP, a free port), for every test that needs a GCS
endpoint: `meridian data push` and the signed registry's stores, reached through gcsfs as the
workloads reach GCS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

# gcsfs 2026.7 defaults to its experimental filesystem, which first asks Google's gRPC storage
# control API for each bucket's layout (hierarchical or zonal); the emulator speaks only the JSON
# API, so that lookup would retry until it times out. The plain GCSFileSystem is what standard
# buckets get after the lookup anyway (and what the images run: see workloads/*/Dockerfile).
# Set before anything imports gcsfs.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

from gcp_storage_emulator import server as emulator_routes
from gcp_storage_emulator.handlers import objects as emulator_objects
from gcp_storage_emulator.server import create_server

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


@dataclass(frozen=True)
class GcsEmulator:
    endpoint: str
    options: dict[str, Any]  # fsspec (gcsfs) storage options for the endpoint
    server: Any  # the emulator's server: its `_storage` holds resumable uploads in flight


@contextmanager
def gcs_emulator() -> Iterator[GcsEmulator]:
    """An in-memory gcp-storage-emulator on 127.0.0.1, stopped on exit."""
    _emulate_upload_cancel()
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        # Port 0: the emulator's HTTP server knows the port it was given.
        port = server._api._httpd.server_address[1]  # pyright: ignore[reportOptionalMemberAccess]
        endpoint = f"http://127.0.0.1:{port}"
        yield GcsEmulator(endpoint, {"endpoint_url": endpoint, "token": "anon", "skip_instance_cache": True}, server)
    finally:
        server.stop()
