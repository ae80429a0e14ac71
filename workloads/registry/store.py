"""Publishing to and fetching from a registry at an fsspec URL (file://, s3://, gs://, ...).

`http://` and `https://` registries (the CDN in front of the bucket) are read-only and go
through `workloads.registry.http`, which adds ETag revalidation and resumable downloads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from torch import nn

from workloads.registry.artifact import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    WEIGHTS_FILE,
    ArtifactId,
    ArtifactRejected,
    FileEntry,
    Manifest,
    Variant,
)
from workloads.registry.signing import SigningKey, load_signer, load_trusted_key, sign_manifest
from workloads.registry.variants import describe, to_safetensors
from workloads.registry.verified import VerifiedArtifact, check_file, file_matches, verify_manifest

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from workloads.tasks.base import Task

HTTP_SCHEMES = ("http://", "https://")


def version_order(version: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key for versions: numeric parts compare as numbers (v2 < v10, 2026.1 < 2026.12)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", version))


def _filesystem(store_url: str, storage_options: Mapping[str, Any] | None) -> tuple[AbstractFileSystem, str]:
    if store_url.startswith(HTTP_SCHEMES):
        raise ValueError(f"{store_url} is read-only over HTTP: publish to the bucket behind it")
    fs, root = fsspec.core.url_to_fs(store_url, **(storage_options or {}))
    return fs, root.rstrip("/")


def _read_optional(fs: AbstractFileSystem, path: str) -> bytes | None:
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    assert isinstance(data, bytes)  # fsspec annotates str | bytes; whole-file reads are bytes
    return data


def _check_variant(variant: Variant, architecture: Mapping[str, Any]) -> None:
    resized, int8 = architecture["resized_modules"], architecture["int8_modules"]
    problem = {
        Variant.FP32: "fp32 must keep the task's architecture" if resized or int8 else None,
        Variant.PRUNED: ("pruned must have pruned modules and no int8 ones" if not resized or int8 else None),
        Variant.INT8: "int8 must have int8 Linear modules" if not int8 else None,
    }[variant]
    if problem:
        raise ValueError(f"model does not fit variant {variant.value}: {problem}")


def publish(
    model: nn.Module,
    task: Task,
    store_url: str,
    signing_key: SigningKey,
    *,
    artifact: ArtifactId,
    parent_version: str,
    metrics: Mapping[str, float] | None = None,
    task_ref: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Sign and upload `model` as `artifact`; return its manifest.

    `task_ref` is what consumers pass to `load_task` (default `task.name`; give the dotted path
    for a user task). Artifacts are immutable: publishing an existing one raises FileExistsError.
    `signing_key` is a Signer, a key, or what `--signing-key` takes (a PEM path, `awskms:///<arn>`,
    `gcpkms://<key version>`). The manifest is signed before anything is written (a KMS that
    refuses leaves nothing behind) and the signature is written last, so a half-finished upload
    is refused as unsigned. The `latest` pointer then moves to this version unless a newer one
    is already there.
    """
    signer = load_signer(signing_key)
    architecture = {
        "input_shape": list(task.input_shape),
        "num_classes": task.num_classes,
        **describe(model, task.build_model()),
    }
    _check_variant(artifact.variant, architecture)
    weights = to_safetensors(model)
    manifest = Manifest(
        model=artifact.model,
        version=artifact.version,
        region=artifact.region,
        variant=artifact.variant,
        task=task_ref or task.name,
        parent_version=parent_version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        files={WEIGHTS_FILE: FileEntry(hashlib.sha256(weights).hexdigest(), len(weights))},
        metrics=dict(metrics or {}),
        architecture=architecture,
    )
    manifest_bytes = manifest.to_bytes()
    fs, root = _filesystem(store_url, storage_options)
    base = f"{root}/{artifact.path}"
    if fs.exists(f"{base}/{MANIFEST_FILE}") or fs.exists(f"{base}/{SIGNATURE_FILE}"):
        raise FileExistsError(f"{store_url}/{artifact.path} is already published: artifacts are immutable")
    signature = sign_manifest(manifest_bytes, signer)
    fs.makedirs(base, exist_ok=True)
    fs.pipe_file(f"{base}/{WEIGHTS_FILE}", weights)
    fs.pipe_file(f"{base}/{MANIFEST_FILE}", manifest_bytes)
    fs.pipe_file(f"{base}/{SIGNATURE_FILE}", signature)
    _advance_latest(fs, root, artifact)
    return manifest


# The `latest` pointer is the one object that changes: served with `Cache-Control: no-store`, no
# CDN keeps a stale copy (CloudFront with min TTL 0 and Cloud CDN's CACHE_ALL_STATIC both skip
# such responses), so servers following `latest` see a new version on their next poll rather
# than after the CDN's default TTL. Artifacts are immutable and cache for as long as the CDN likes.
NO_STORE = "no-store"


def _uncached_write_options(fs: AbstractFileSystem) -> dict[str, Any]:
    """The object-store option that sets Cache-Control on a write (s3fs passes keywords through
    to PutObject; gcsfs takes fixed-key metadata); a local directory has no such metadata."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "s3" in protocols:
        return {"CacheControl": NO_STORE}
    if "gs" in protocols or "gcs" in protocols:
        return {"fixed_key_metadata": {"cache_control": NO_STORE}}
    return {}


def _advance_latest(fs: AbstractFileSystem, root: str, artifact: ArtifactId) -> None:
    path = f"{root}/{artifact.latest_path}"
    current = _read_optional(fs, path)
    if current is not None and version_order(json.loads(current)["version"]) >= version_order(artifact.version):
        return
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, json.dumps({"version": artifact.version}).encode(), **_uncached_write_options(fs))


def is_published(store_url: str, artifact: ArtifactId, *, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether `artifact` was published to completion: its signature, written last, is there.
    (Whether it verifies is each consumer's check, with the key it trusts.)"""
    fs, root = _filesystem(store_url, storage_options)
    return bool(fs.exists(f"{root}/{artifact.path}/{SIGNATURE_FILE}"))


def latest_version(
    store_url: str,
    model: str,
    region: str,
    variant: Variant | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> str | None:
    """The newest published version of this model, region and variant (None if none yet).

    Hot reload polls this, then fetches and verifies that version like any other.
    """
    probe = ArtifactId(model, "0", region, Variant(variant))  # validates the names
    if store_url.startswith(HTTP_SCHEMES):
        from workloads.registry.http import HttpRegistry

        with HttpRegistry(store_url) as registry:
            return registry.latest_version(model, region, probe.variant)
    fs, root = _filesystem(store_url, storage_options)
    raw = _read_optional(fs, f"{root}/{probe.latest_path}")
    return None if raw is None else str(json.loads(raw)["version"])


def fetch_verified(
    store_url: str,
    artifact: ArtifactId,
    trusted_key: Ed25519PublicKey | str | Path,
    dest_dir: Path,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> VerifiedArtifact:
    """Download `artifact` into `dest_dir` (one directory per artifact) and verify it.

    Raises ArtifactRejected (naming the file and the reason) if the signature is missing or not
    the trusted key's, the manifest was altered or belongs to another artifact, or a file does
    not match its hash; nothing rejected is left in `dest_dir` under its final name. Transport
    failures raise OSError (or httpx errors over HTTP) and can be retried.
    """
    key = load_trusted_key(trusted_key)
    if store_url.startswith(HTTP_SCHEMES):
        from workloads.registry.http import HttpRegistry

        with HttpRegistry(store_url) as registry:
            return registry.fetch_verified(artifact, key, dest_dir)
    fs, root = _filesystem(store_url, storage_options)
    base = f"{root}/{artifact.path}"
    manifest_bytes = _read_optional(fs, f"{base}/{MANIFEST_FILE}")
    signature = _read_optional(fs, f"{base}/{SIGNATURE_FILE}")
    manifest = verify_manifest(artifact, manifest_bytes, signature, key)
    assert manifest_bytes is not None and signature is not None
    dest_dir.mkdir(parents=True, exist_ok=True)
    downloaded = 0
    for name, entry in manifest.files.items():
        target = dest_dir / name
        if file_matches(target, entry):
            continue
        partial = dest_dir / f"{name}.part"
        try:
            fs.get_file(f"{base}/{name}", str(partial))
        except FileNotFoundError:
            raise ArtifactRejected(str(artifact), name, "missing from the registry") from None
        downloaded += partial.stat().st_size
        try:
            check_file(artifact, name, partial, entry)
        except ArtifactRejected:
            partial.unlink()
            raise
        partial.replace(target)
    (dest_dir / MANIFEST_FILE).write_bytes(manifest_bytes)
    (dest_dir / SIGNATURE_FILE).write_bytes(signature)
    return VerifiedArtifact(manifest, dest_dir, downloaded)
