"""Publishing, fetching and loading signed artifacts through fsspec stores (file:// and s3://),
and refusing every artifact that is not exactly what the trusted key signed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import torch
from torch import nn

from tests.gcs_emulator import gcs_emulator
from workloads.registry import (
    ArtifactId,
    ArtifactRejected,
    Variant,
    fetch_verified,
    generate_keypair,
    latest_version,
    load_model,
    publish,
)
from workloads.registry.artifact import MANIFEST_FILE, SIGNATURE_FILE, WEIGHTS_FILE
from workloads.tasks import Task


def artifact(variant: Variant | str = Variant.FP32, version: str = "1", region: str = "eu-west-1") -> ArtifactId:
    return ArtifactId("meridian", version, region, Variant(variant))


def same_outputs(a: nn.Module, b: nn.Module, input_size: int = 64) -> bool:
    x = torch.randn(16, input_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return torch.equal(a(x), b(x))


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any] | None]:
    """(registry URL, storage options): a local directory, or a bucket on the moto S3 server."""
    if request.param == "file":
        return f"file://{tmp_path / 'registry'}", None
    bucket, options = request.getfixturevalue("s3_registry")
    return f"{bucket}/{request.node.name.replace('[', '-').rstrip(']')}", options


@pytest.mark.parametrize("variant", list(Variant))
def test_every_variant_round_trips_with_identical_outputs(
    store: tuple[str, dict[str, Any] | None],
    variant: Variant,
    variants: dict[Variant, nn.Module],
    digits: Task,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    url, options = store
    private_key, public_key = keys
    model = variants[variant]
    manifest = publish(
        model,
        digits,
        url,
        private_key,
        artifact=artifact(variant),
        parent_version="1",
        metrics={"accuracy": 0.5},
        storage_options=options,
    )

    verified = fetch_verified(url, artifact(variant), public_key, tmp_path / "cache", storage_options=options)
    loaded = load_model(verified, digits)

    assert verified.manifest == manifest
    assert verified.bytes_downloaded == manifest.files[WEIGHTS_FILE].size
    assert same_outputs(loaded, model)
    assert [type(m) for m in loaded.modules()] == [type(m) for m in model.modules()]
    # The task is found from the manifest when the consumer does not pass one.
    assert same_outputs(load_model(verified), model)


def test_manifest_records_what_consumers_need(
    variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'registry'}"
    manifest = publish(
        variants[Variant.PRUNED],
        digits,
        url,
        keys[0],
        artifact=artifact(Variant.PRUNED, version="7"),
        parent_version="6",
        metrics={"accuracy": 0.91},
    )
    stored = json.loads((tmp_path / "registry" / artifact(Variant.PRUNED, "7").path / MANIFEST_FILE).read_bytes())

    assert stored["task"] == "digits" and stored["parent_version"] == "6"
    assert stored["variant"] == "pruned" and stored["region"] == "eu-west-1"
    assert stored["architecture"]["input_shape"] == [64]
    assert stored["architecture"]["resized_modules"] == {
        "0": {"out_features": 64},
        "2": {"in_features": 64, "out_features": 64},
        "4": {"in_features": 64},
    }
    assert stored["files"][WEIGHTS_FILE]["sha256"] == manifest.files[WEIGHTS_FILE].sha256
    assert stored["metrics"] == {"accuracy": 0.91}
    assert stored["created_at"].endswith("+00:00")


def test_the_latest_pointer_only_moves_forward(
    store: tuple[str, dict[str, Any] | None], variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path]
) -> None:
    url, options = store
    assert latest_version(url, "meridian", "eu-west-1", "int8", storage_options=options) is None
    for version in ("2", "10", "9"):  # numeric order, not string order; 9 is a late backfill
        publish(
            variants[Variant.INT8],
            digits,
            url,
            keys[0],
            artifact=artifact(Variant.INT8, version),
            parent_version=version,
            storage_options=options,
        )
    assert latest_version(url, "meridian", "eu-west-1", "int8", storage_options=options) == "10"
    assert latest_version(url, "meridian", "us-east-1", "int8", storage_options=options) is None


def test_published_artifacts_are_immutable(
    variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'registry'}"
    publish(variants[Variant.FP32], digits, url, keys[0], artifact=artifact(), parent_version="1")
    with pytest.raises(FileExistsError, match="already published"):
        publish(variants[Variant.FP32], digits, url, keys[0], artifact=artifact(), parent_version="1")


def test_a_model_that_does_not_fit_its_variant_is_not_published(
    variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'registry'}"
    with pytest.raises(ValueError, match="variant int8: int8 must have int8 Linear modules"):
        publish(variants[Variant.FP32], digits, url, keys[0], artifact=artifact(Variant.INT8), parent_version="1")
    with pytest.raises(ValueError, match="variant fp32: fp32 must keep the task's architecture"):
        publish(variants[Variant.PRUNED], digits, url, keys[0], artifact=artifact(Variant.FP32), parent_version="1")
    with pytest.raises(ValueError, match="not part of the task's architecture"):
        publish(
            nn.Sequential(nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU()),
            digits,
            url,
            keys[0],
            artifact=artifact(),
            parent_version="1",
        )


def test_loading_with_the_wrong_task_names_both(
    variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'registry'}"
    publish(variants[Variant.FP32], digits, url, keys[0], artifact=artifact(), parent_version="1")
    verified = fetch_verified(url, artifact(), keys[1], tmp_path / "cache")
    other = type(digits)(name="eight-classes", num_classes=8)  # pyright: ignore[reportCallIssue]
    with pytest.raises(ValueError, match=r"task 'eight-classes' .* does not match artifact meridian/1/eu-west-1/fp32"):
        load_model(verified, other)


class TestRefusal:
    """Whatever was changed, the consumer gets ArtifactRejected naming the file and the reason,
    and no file of the rejected artifact lands under its final name."""

    @pytest.fixture
    def published(
        self, variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path
    ) -> Path:
        url = f"file://{tmp_path / 'registry'}"
        publish(variants[Variant.INT8], digits, url, keys[0], artifact=artifact(Variant.INT8), parent_version="1")
        return tmp_path / "registry" / artifact(Variant.INT8).path

    def fetch(self, published: Path, trusted_key: Path, dest: Path, asked: ArtifactId | None = None) -> None:
        registry = published.parents[3]
        fetch_verified(f"file://{registry}", asked or artifact(Variant.INT8), trusted_key, dest)

    def test_tampered_weights(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        weights = bytearray((published / WEIGHTS_FILE).read_bytes())
        weights[-1] ^= 0x01  # one bit of one int8 weight
        (published / WEIGHTS_FILE).write_bytes(bytes(weights))

        with pytest.raises(ArtifactRejected, match=r"model\.safetensors: sha256 [0-9a-f]{64} does not match") as caught:
            self.fetch(published, keys[1], tmp_path / "cache")
        assert caught.value.file == WEIGHTS_FILE
        assert not (tmp_path / "cache" / WEIGHTS_FILE).exists()
        assert not (tmp_path / "cache" / f"{WEIGHTS_FILE}.part").exists()

    def test_truncated_weights(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        weights = (published / WEIGHTS_FILE).read_bytes()
        (published / WEIGHTS_FILE).write_bytes(weights[:100])
        with pytest.raises(ArtifactRejected, match=rf"model\.safetensors: 100 bytes, the manifest says {len(weights)}"):
            self.fetch(published, keys[1], tmp_path / "cache")

    def test_tampered_manifest(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        manifest = json.loads((published / MANIFEST_FILE).read_bytes())
        manifest["metrics"]["accuracy"] = 0.99  # a better-looking model, same signature
        (published / MANIFEST_FILE).write_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())

        with pytest.raises(ArtifactRejected, match=r"manifest\.json: does not match its signature") as caught:
            self.fetch(published, keys[1], tmp_path / "cache")
        assert caught.value.file == MANIFEST_FILE
        assert not (tmp_path / "cache").exists()

    def test_missing_signature(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        (published / SIGNATURE_FILE).unlink()
        with pytest.raises(ArtifactRejected, match=r"manifest\.sig: missing: the artifact is unsigned"):
            self.fetch(published, keys[1], tmp_path / "cache")

    def test_signed_by_another_key(self, published: Path, tmp_path: Path) -> None:
        _, stranger = generate_keypair(tmp_path / "stranger")
        with pytest.raises(
            ArtifactRejected, match=r"manifest\.sig: signed by key [0-9a-f]{16}, not by the trusted key [0-9a-f]{16}"
        ):
            self.fetch(published, stranger, tmp_path / "cache")

    def test_garbage_signature(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        (published / SIGNATURE_FILE).write_bytes(b"not a signature")
        with pytest.raises(ArtifactRejected, match=r"manifest\.sig: malformed signature file"):
            self.fetch(published, keys[1], tmp_path / "cache")

    def test_validly_signed_artifact_copied_to_another_region(
        self, published: Path, keys: tuple[Path, Path], tmp_path: Path
    ) -> None:
        elsewhere = artifact(Variant.INT8, region="us-east-1")
        shutil.copytree(published, published.parents[3] / elsewhere.path)
        with pytest.raises(
            ArtifactRejected, match=r"manifest\.json: signed for meridian/1/eu-west-1/int8, not for this path"
        ):
            self.fetch(published, keys[1], tmp_path / "cache", asked=elsewhere)

    def test_nothing_published_at_that_path(self, published: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
        with pytest.raises(ArtifactRejected, match=r"meridian/2/eu-west-1/int8 rejected: manifest\.json: missing"):
            self.fetch(published, keys[1], tmp_path / "cache", asked=artifact(Variant.INT8, version="2"))

    def test_weights_changed_on_disk_after_verification_are_not_loaded(
        self, published: Path, keys: tuple[Path, Path], digits: Task, tmp_path: Path
    ) -> None:
        verified = fetch_verified(f"file://{published.parents[3]}", artifact(Variant.INT8), keys[1], tmp_path / "cache")
        (tmp_path / "cache" / WEIGHTS_FILE).write_bytes(b"\x00" * 64)
        with pytest.raises(ArtifactRejected, match="changed on disk after verification"):
            load_model(verified, digits)


def test_tampering_is_refused_on_s3_too(
    s3_registry: tuple[str, dict[str, Any]],
    variants: dict[Variant, nn.Module],
    digits: Task,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    bucket, s3_storage_options = s3_registry
    url = f"{bucket}/tampered"
    publish(
        variants[Variant.FP32],
        digits,
        url,
        keys[0],
        artifact=artifact(),
        parent_version="1",
        storage_options=s3_storage_options,
    )
    fs, root = fsspec.core.url_to_fs(url, **s3_storage_options)
    weights_path = f"{root}/{artifact().path}/{WEIGHTS_FILE}"
    fs.pipe_file(weights_path, fs.cat_file(weights_path)[:-4] + b"\x00\x00\x80\x3f")

    with pytest.raises(ArtifactRejected, match=r"model\.safetensors: sha256"):
        fetch_verified(url, artifact(), keys[1], tmp_path / "cache", storage_options=s3_storage_options)


def test_publishing_over_http_is_refused(
    variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path]
) -> None:
    with pytest.raises(ValueError, match="read-only over HTTP"):
        publish(
            variants[Variant.FP32],
            digits,
            "https://cdn.example/registry",
            keys[0],
            artifact=artifact(),
            parent_version="1",
        )


@pytest.fixture(params=["s3", "gs"])
def object_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any], Callable[[str], str | None]]]:
    """(registry URL, storage options, the Cache-Control of an object under it): a bucket on moto's
    S3 server, or on gcp-storage-emulator."""
    if request.param == "s3":
        bucket, options = request.getfixturevalue("s3_registry")
        url = f"{bucket}/cache-control"
        fs, root = fsspec.core.url_to_fs(url, **options)
        bucket_name, prefix = root.split("/", 1)

        def s3_cache_control(key: str) -> str | None:
            head = fsspec.asyn.sync(fs.loop, fs.s3.head_object, Bucket=bucket_name, Key=f"{prefix}/{key}")
            return head.get("CacheControl")

        yield url, options, s3_cache_control
        return
    with gcs_emulator() as gcs:
        fs = fsspec.filesystem("gs", **gcs.options)
        fs.mkdir("meridian-registry")
        url = "gs://meridian-registry/cache-control"
        yield url, gcs.options, lambda key: fs.info(f"{url}/{key}").get("cacheControl")


def test_the_latest_pointer_is_never_cached_by_a_cdn_and_artifacts_may_be(
    object_store: tuple[str, dict[str, Any], Callable[[str], str | None]],
    variants: dict[Variant, nn.Module],
    digits: Task,
    keys: tuple[Path, Path],
) -> None:
    """Servers poll `latest` through the CDN: a cached pointer would hide a new version for the
    CDN's whole TTL, so the pointer carries Cache-Control: no-store (artifacts are immutable)."""
    url, options, cache_control = object_store
    publish(
        variants[Variant.FP32], digits, url, keys[0], artifact=artifact(), parent_version="1", storage_options=options
    )
    assert cache_control(artifact().latest_path) == "no-store"
    assert cache_control(f"{artifact().path}/{WEIGHTS_FILE}") is None
