"""Edge servers fetch artifacts over HTTP through the CDN: an unchanged artifact is revalidated
with ETags and not downloaded again, an interrupted download resumes where it stopped, and
nothing is used before it is verified."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

import httpx
import pytest
import torch
from torch import nn

from workloads.registry import (
    ArtifactId,
    ArtifactRejected,
    HttpRegistry,
    Variant,
    fetch_verified,
    latest_version,
    load_model,
    load_trusted_key,
    publish,
)
from workloads.registry.artifact import WEIGHTS_FILE
from workloads.registry.serve import RegistryRequestHandler, RegistryServer
from workloads.registry.verified import file_matches
from workloads.tasks import Task

INT8 = ArtifactId("meridian", "1", "eu-west-1", Variant.INT8)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0


@dataclass
class Traffic:
    """What the server saw, and which transfers it should cut short (path suffix -> bytes)."""

    requests: list[Request] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)

    def to(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(f"/{name}")]


def recording_handler(traffic: Traffic) -> type[RegistryRequestHandler]:
    class Recording(RegistryRequestHandler):
        log: ClassVar[Traffic] = traffic

        def send_response(self, code: int, message: str | None = None) -> None:
            self.log.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, code))
            super().send_response(code, message)

        def send_body(self, file: BinaryIO, length: int) -> None:
            request = self.log.requests[-1]
            suffix = next((s for s in self.log.cut_after if self.path.endswith(s)), None)
            if suffix is not None:
                cut = self.log.cut_after.pop(suffix)
                self.wfile.write(file.read(cut))
                request.body_bytes = cut
                self.close_connection = True  # the client sees the body end early
                return
            super().send_body(file, length)
            request.body_bytes = length

    return Recording


@pytest.fixture
def registry_dir(variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    publish(variants[Variant.INT8], digits, f"file://{root}", keys[0], artifact=INT8, parent_version="1")
    return root


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def cdn(registry_dir: Path, traffic: Traffic) -> Iterator[str]:
    with RegistryServer(registry_dir, handler=recording_handler(traffic)) as server:
        yield server.url


def weights_size(registry_dir: Path) -> int:
    return (registry_dir / INT8.path / WEIGHTS_FILE).stat().st_size


def weights_etag(cdn: str) -> str:
    return httpx.head(f"{cdn}/{INT8.path}/{WEIGHTS_FILE}").headers["etag"]


def test_an_unchanged_artifact_is_revalidated_not_downloaded(
    cdn: str,
    traffic: Traffic,
    keys: tuple[Path, Path],
    variants: dict[Variant, nn.Module],
    digits: Task,
    tmp_path: Path,
) -> None:
    first = fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")
    traffic.requests.clear()

    second = fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    assert first.bytes_downloaded > weights_size(tmp_path / "registry")
    assert second.bytes_downloaded == 0
    assert [r.status for r in traffic.requests] == [304, 304, 304]
    assert all("if-none-match" in r.headers for r in traffic.requests)
    x = torch.randn(4, 64)
    assert torch.equal(load_model(second, digits)(x), variants[Variant.INT8](x))


def test_an_interrupted_download_resumes_with_a_range_request(
    cdn: str, traffic: Traffic, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    size = weights_size(registry_dir)
    traffic.cut_after[WEIGHTS_FILE] = size // 3

    verified = fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    cut, resumed = traffic.to(WEIGHTS_FILE)
    assert (cut.status, cut.body_bytes) == (200, size // 3)
    assert resumed.headers["range"] == f"bytes={size // 3}-"
    assert resumed.headers["if-range"] == weights_etag(cdn)
    assert (resumed.status, resumed.body_bytes) == (206, size - size // 3)
    assert file_matches(tmp_path / "edge" / WEIGHTS_FILE, verified.manifest.files[WEIGHTS_FILE])
    assert not (tmp_path / "edge" / f"{WEIGHTS_FILE}.part").exists()


def test_a_download_cut_in_one_process_resumes_in_the_next(
    cdn: str, traffic: Traffic, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    size = weights_size(registry_dir)
    traffic.cut_after[WEIGHTS_FILE] = size // 2
    with HttpRegistry(cdn, attempts=1) as registry, pytest.raises(httpx.TransportError):
        registry.fetch_verified(INT8, load_trusted_key(keys[1]), tmp_path / "edge")
    assert (tmp_path / "edge" / f"{WEIGHTS_FILE}.part").stat().st_size == size // 2
    assert not (tmp_path / "edge" / WEIGHTS_FILE).exists()

    fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    assert traffic.to(WEIGHTS_FILE)[-1].headers["range"] == f"bytes={size // 2}-"
    assert sum(r.body_bytes for r in traffic.to(WEIGHTS_FILE)) == size


def test_a_resume_after_the_file_changed_starts_over(
    cdn: str, traffic: Traffic, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    traffic.cut_after[WEIGHTS_FILE] = 1000
    with HttpRegistry(cdn, attempts=1) as registry, pytest.raises(httpx.TransportError):
        registry.fetch_verified(INT8, load_trusted_key(keys[1]), tmp_path / "edge")
    weights = registry_dir / INT8.path / WEIGHTS_FILE
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))  # new ETag

    fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    last = traffic.to(WEIGHTS_FILE)[-1]
    assert "if-range" in last.headers and last.status == 200
    assert last.body_bytes == weights_size(registry_dir)


def test_a_tampered_artifact_is_refused_and_the_verified_copy_is_kept(
    cdn: str, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    verified = fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")
    weights = registry_dir / INT8.path / WEIGHTS_FILE
    tampered = bytearray(weights.read_bytes())
    tampered[-3] ^= 0xFF
    weights.write_bytes(bytes(tampered))

    with pytest.raises(ArtifactRejected, match=r"model\.safetensors: sha256"):
        fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    assert file_matches(tmp_path / "edge" / WEIGHTS_FILE, verified.manifest.files[WEIGHTS_FILE])
    assert not (tmp_path / "edge" / f"{WEIGHTS_FILE}.part").exists()


def test_a_local_copy_that_went_bad_is_downloaded_again(
    cdn: str, traffic: Traffic, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")
    (tmp_path / "edge" / WEIGHTS_FILE).write_bytes(b"bit rot")

    with pytest.raises(ArtifactRejected, match=r"model\.safetensors: 7 bytes"):
        fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")  # the CDN answers 304: the bad copy is caught
    verified = fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")

    assert traffic.to(WEIGHTS_FILE)[-1].status == 200
    assert verified.bytes_downloaded == weights_size(registry_dir)


def test_an_unsigned_artifact_over_http_is_refused(
    cdn: str, registry_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    (registry_dir / INT8.path / "manifest.sig").unlink()
    with pytest.raises(ArtifactRejected, match=r"manifest\.sig: missing: the artifact is unsigned"):
        fetch_verified(cdn, INT8, keys[1], tmp_path / "edge")
    assert not (tmp_path / "edge" / WEIGHTS_FILE).exists()


def test_the_latest_version_is_read_through_the_cdn(cdn: str) -> None:
    assert latest_version(cdn, "meridian", "eu-west-1", "int8") == "1"
    assert latest_version(cdn, "meridian", "ap-southeast-1", "int8") is None
