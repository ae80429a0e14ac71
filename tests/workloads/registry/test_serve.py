"""The registry's HTTP server behaves like a CDN in front of the bucket: ETags, 304s, ranges."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workloads.registry.serve import RegistryServer

CONTENT = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def root(tmp_path: Path) -> Path:
    artifact = tmp_path / "registry" / "meridian" / "1" / "eu-west-1" / "int8"
    artifact.mkdir(parents=True)
    (artifact / "model.safetensors").write_bytes(CONTENT)
    pointer = tmp_path / "registry" / "meridian" / "latest" / "eu-west-1"
    pointer.mkdir(parents=True)
    (pointer / "int8.json").write_text('{"version": "1"}')
    (tmp_path / "secret.txt").write_text("outside the registry")
    return tmp_path / "registry"


@pytest.fixture
def server(root: Path) -> Iterator[RegistryServer]:
    with RegistryServer(root) as running:
        yield running


@pytest.fixture
def client(server: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as http:
        yield http


WEIGHTS = "/meridian/1/eu-west-1/int8/model.safetensors"


def test_a_file_comes_with_a_strong_etag_and_immutable_caching(client: httpx.Client) -> None:
    response = client.get(WEIGHTS)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "application/octet-stream"


def test_latest_pointers_must_be_revalidated(client: httpx.Client) -> None:
    response = client.get("/meridian/latest/eu-west-1/int8.json")
    assert response.json() == {"version": "1"}
    assert response.headers["cache-control"] == "no-cache"


def test_a_matching_if_none_match_gets_304_without_a_body(client: httpx.Client) -> None:
    etag = client.get(WEIGHTS).headers["etag"]
    response = client.get(WEIGHTS, headers={"If-None-Match": f'"other", {etag}'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


def test_the_etag_changes_when_the_file_is_replaced(client: httpx.Client, root: Path) -> None:
    etag = client.get(WEIGHTS).headers["etag"]
    path = root / WEIGHTS.lstrip("/")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    response = client.get(WEIGHTS, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
    ],
)
def test_a_single_range_gets_206_with_exactly_those_bytes(
    client: httpx.Client, header: str, first: int, last: int
) -> None:
    response = client.get(WEIGHTS, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response.content == CONTENT[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=500-100", "bytes=-0"])
def test_an_unsatisfiable_range_gets_416(client: httpx.Client, header: str) -> None:
    response = client.get(WEIGHTS, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


def test_a_range_with_a_stale_if_range_gets_the_whole_file(client: httpx.Client) -> None:
    response = client.get(WEIGHTS, headers={"Range": "bytes=100-", "If-Range": '"stale"'})
    assert response.status_code == 200
    assert response.content == CONTENT


def test_head_sends_headers_only(client: httpx.Client) -> None:
    response = client.head(WEIGHTS)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/meridian/../../secret.txt",
        "/meridian/1",
        "/",
        "/missing",
        "/meridian//1/eu-west-1/int8/model.safetensors",
    ],
)
def test_nothing_outside_the_files_of_the_registry_is_served(server: RegistryServer, path: str) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)  # raw: no client-side normalisation of '..'
        response = connection.getresponse()
        assert response.status == 404
        assert response.read() == b""
    finally:
        connection.close()


def test_a_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match=r"registry root .* is not a directory"):
        RegistryServer(tmp_path / "nowhere")
