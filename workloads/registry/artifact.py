"""What an artifact is: its identity, its place in the registry, and its manifest.

Layout of a registry (any fsspec URL, or the same tree served over HTTP by the CDN):

    <registry>/<model>/<version>/<region>/<variant>/model.safetensors
    <registry>/<model>/<version>/<region>/<variant>/manifest.json   canonical JSON, signed
    <registry>/<model>/<version>/<region>/<variant>/manifest.sig    Ed25519 over manifest.json
    <registry>/<model>/latest/<region>/<variant>.json               {"version": ...}, newest

An artifact directory is immutable once published. The `latest` pointer is only a hint for hot
reload: it is unsigned, so consumers verify whatever version it names like any other.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Variant(StrEnum):
    FP32 = "fp32"  # the global model fine-tuned on the region's data
    PRUNED = "pruned"  # structured pruning (fewer neurons/channels) + recovery fine-tuning
    INT8 = "int8"  # dynamic int8 Linear layers, for CPU edge servers


FORMAT = "meridian-artifact/1"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
WEIGHTS_FILE = "model.safetensors"
LATEST_DIR = "latest"  # reserved: no version may be called this

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ArtifactRejected(Exception):
    """An artifact failed verification; nothing of it may be loaded.

    `file` names the offending file (relative to the artifact directory) and `reason` says what
    is wrong with it, so an operator can tell tampering from a wrong key from a half upload.
    """

    def __init__(self, artifact: str, file: str, reason: str) -> None:
        super().__init__(f"artifact {artifact} rejected: {file}: {reason}")
        self.artifact = artifact
        self.file = file
        self.reason = reason


@dataclass(frozen=True)
class ArtifactId:
    """Which artifact: model name, version, region and variant (also its path in the registry)."""

    model: str
    version: str
    region: str
    variant: Variant

    def __post_init__(self) -> None:
        for name in ("model", "version", "region"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise ValueError(
                    f"artifact {name} {value!r} is not a valid name: use 1-128 characters of "
                    "letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
        if self.version == LATEST_DIR:
            raise ValueError(f"artifact version {LATEST_DIR!r} is reserved for the latest pointers")
        try:
            object.__setattr__(self, "variant", Variant(self.variant))
        except ValueError:
            choices = ", ".join(v.value for v in Variant)
            raise ValueError(f"artifact variant {self.variant!r} is not one of {choices}") from None

    @property
    def path(self) -> str:
        """The artifact directory, relative to the registry root."""
        return f"{self.model}/{self.version}/{self.region}/{self.variant.value}"

    @property
    def latest_path(self) -> str:
        """The pointer naming the newest version of this model, region and variant."""
        return f"{self.model}/{LATEST_DIR}/{self.region}/{self.variant.value}.json"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Everything a consumer needs to trust and rebuild one artifact.

    `task` is what `workloads.tasks.load_task` accepts (a built-in name or a dotted path);
    `architecture` holds what the loader needs beyond `task.build_model()`: input shape and
    classes (for serving metadata), pruned module widths and int8 quantization details.
    """

    model: str
    version: str
    region: str
    variant: Variant
    task: str
    parent_version: str
    created_at: str  # ISO 8601, UTC
    files: dict[str, FileEntry]
    metrics: dict[str, float] = field(default_factory=dict)
    architecture: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    @property
    def artifact_id(self) -> ArtifactId:
        return ArtifactId(self.model, self.version, self.region, self.variant)

    def to_bytes(self) -> bytes:
        """Canonical bytes: what is signed, and exactly what manifest.json holds."""
        data = asdict(self)
        data["variant"] = self.variant.value
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, artifact: str) -> Manifest:
        """Parse a manifest whose signature was already verified; malformed ones are rejected."""

        def reject(reason: str) -> ArtifactRejected:
            return ArtifactRejected(artifact, MANIFEST_FILE, reason)

        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise reject(f"not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise reject("not a JSON object")
        if data.get("format") != FORMAT:
            raise reject(f"format {data.get('format')!r} is not {FORMAT!r}")
        expected = set(cls.__dataclass_fields__)
        if missing := expected - data.keys():
            raise reject(f"missing fields {sorted(missing)}")
        if unknown := data.keys() - expected:
            raise reject(f"unknown fields {sorted(unknown)}")
        files = data["files"]
        if not isinstance(files, dict) or not files:
            raise reject("'files' must list at least one file")
        entries = {}
        for name, entry in files.items():
            # Names come from the (signed) manifest but still become local paths: plain names only.
            if not _NAME.fullmatch(name) or name in (MANIFEST_FILE, SIGNATURE_FILE):
                raise reject(f"file name {name!r} is not allowed")
            if (
                not isinstance(entry, dict)
                or set(entry) != {"sha256", "size"}
                or not isinstance(entry["sha256"], str)
                or not _SHA256.fullmatch(entry["sha256"])
                or not isinstance(entry["size"], int)
                or entry["size"] < 0
            ):
                raise reject(f"entry of {name!r} must be {{sha256: 64 hex digits, size: int >= 0}}")
            entries[name] = FileEntry(**entry)
        try:
            identity = ArtifactId(data["model"], data["version"], data["region"], data["variant"])
        except ValueError as error:
            raise reject(str(error)) from None
        return cls(**{**data, "files": entries, "variant": identity.variant})
