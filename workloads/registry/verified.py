"""Verification, and the only way to load a model: from a VerifiedArtifact.

Order matters: the signature is checked over the raw manifest bytes before they are parsed, the
manifest must describe the artifact that was asked for (a validly signed manifest copied to
another region's path is refused), and every file must match its sha256 before it is used.
`load_model` hashes the weights again and deserializes those very bytes, so a file changed on
disk after verification is never loaded either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
)
from workloads.registry.signing import verify_signature
from workloads.registry.variants import rebuild

if TYPE_CHECKING:
    from workloads.tasks.base import Task

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifiedArtifact:
    """An artifact whose signature and file hashes were checked, held in `directory`."""

    manifest: Manifest
    directory: Path
    bytes_downloaded: int  # 0 when every file was already present and unchanged


def verify_manifest(
    artifact: ArtifactId,
    manifest_bytes: bytes | None,
    signature_file: bytes | None,
    trusted_key: Ed25519PublicKey,
) -> Manifest:
    """The parsed manifest of `artifact`; raises ArtifactRejected unless it is authentic."""
    name = str(artifact)
    if manifest_bytes is None:
        raise ArtifactRejected(name, MANIFEST_FILE, "missing from the registry")
    if signature_file is None:
        raise ArtifactRejected(name, SIGNATURE_FILE, "missing: the artifact is unsigned")
    verify_signature(manifest_bytes, signature_file, trusted_key, name)
    manifest = Manifest.from_bytes(manifest_bytes, name)
    if manifest.artifact_id != artifact:
        raise ArtifactRejected(name, MANIFEST_FILE, f"signed for {manifest.artifact_id}, not for this path")
    return manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_matches(path: Path, entry: FileEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def check_file(artifact: ArtifactId, name: str, path: Path, entry: FileEntry) -> None:
    """Raise ArtifactRejected unless the file at `path` is byte for byte what the manifest lists."""
    size = path.stat().st_size
    if size != entry.size:
        raise ArtifactRejected(str(artifact), name, f"{size} bytes, the manifest says {entry.size}")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ArtifactRejected(str(artifact), name, f"sha256 {actual} does not match the manifest's {entry.sha256}")


def load_model(verified: VerifiedArtifact, task: Task | None = None) -> nn.Module:
    """The artifact's model in eval mode (fp32, pruned or int8), rebuilt on `task.build_model()`.

    `task` defaults to `workloads.tasks.load_task(manifest.task)`; pass it to avoid the lookup.
    """
    manifest = verified.manifest
    artifact = str(manifest.artifact_id)
    entry = manifest.files.get(WEIGHTS_FILE)
    if entry is None:
        raise ArtifactRejected(artifact, MANIFEST_FILE, f"lists no {WEIGHTS_FILE}")
    if task is None:
        from workloads.tasks import load_task  # the task registry is only needed for this default

        task = load_task(manifest.task)
    expected = (manifest.architecture.get("input_shape"), manifest.architecture.get("num_classes"))
    if (list(task.input_shape), task.num_classes) != expected:
        raise ValueError(
            f"task {task.name!r} (input {task.input_shape}, {task.num_classes} classes) does not "
            f"match artifact {artifact} (task {manifest.task!r}, input {expected[0]}, {expected[1]} classes)"
        )
    weights = (verified.directory / WEIGHTS_FILE).read_bytes()
    if hashlib.sha256(weights).hexdigest() != entry.sha256:
        raise ArtifactRejected(artifact, WEIGHTS_FILE, "changed on disk after verification")
    return rebuild(task.build_model(), manifest.architecture, weights)
