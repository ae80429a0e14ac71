"""Artifact identity, layout and manifest parsing: bad names and malformed manifests are named."""

from __future__ import annotations

import json

import pytest

from workloads.registry import ArtifactId, ArtifactRejected, Manifest, Variant, version_order
from workloads.registry.artifact import FileEntry

SHA = "ab" * 32


def manifest(**changes: object) -> Manifest:
    fields = {
        "model": "meridian",
        "version": "3",
        "region": "eu-west-1",
        "variant": Variant.INT8,
        "task": "digits",
        "parent_version": "3",
        "created_at": "2026-11-26T00:00:00+00:00",
        "files": {"model.safetensors": FileEntry(SHA, 10)},
        "metrics": {"accuracy": 0.9},
        "architecture": {"input_shape": [64], "num_classes": 10},
    }
    fields.update(changes)
    return Manifest(**fields)  # pyright: ignore[reportArgumentType]


def test_an_artifact_lives_at_model_version_region_variant() -> None:
    artifact = ArtifactId("meridian", "3", "eu-west-1", "int8")  # pyright: ignore[reportArgumentType]
    assert artifact.variant is Variant.INT8
    assert artifact.path == "meridian/3/eu-west-1/int8"
    assert artifact.latest_path == "meridian/latest/eu-west-1/int8.json"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("meridian", "../3", "eu-west-1", "int8"), "version '../3' is not a valid name"),
        (("meridian", "3", "eu west", "int8"), "region 'eu west' is not a valid name"),
        (("", "3", "eu-west-1", "int8"), "model '' is not a valid name"),
        (("meridian", "latest", "eu-west-1", "int8"), "'latest' is reserved"),
        (("meridian", "3", "eu-west-1", "int4"), "variant 'int4' is not one of fp32, pruned, int8"),
    ],
)
def test_bad_identities_are_refused_by_name(fields: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArtifactId(*fields)  # pyright: ignore[reportArgumentType]


def test_versions_order_by_their_numbers() -> None:
    versions = ["10", "2", "v1.10", "v1.9", "2026.11.26-2", "2026.11.26-10", "1"]
    assert sorted(versions, key=version_order) == ["1", "2", "10", "2026.11.26-2", "2026.11.26-10", "v1.9", "v1.10"]


def test_the_manifest_bytes_are_canonical_and_parse_back() -> None:
    raw = manifest().to_bytes()
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert Manifest.from_bytes(raw, "a") == manifest()


def edited(**changes: object) -> bytes:
    data = json.loads(manifest().to_bytes())
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (edited(format="meridian-artifact/0"), "format 'meridian-artifact/0' is not"),
        (edited(extra=1), r"unknown fields \['extra'\]"),
        (edited(files={}), "'files' must list at least one file"),
        (edited(files={"../../etc/passwd": {"sha256": SHA, "size": 1}}), "file name '../../etc/passwd' is not allowed"),
        (edited(files={"manifest.sig": {"sha256": SHA, "size": 1}}), "file name 'manifest.sig' is not allowed"),
        (edited(files={"model.safetensors": {"sha256": "xyz", "size": 1}}), "must be {sha256: 64 hex digits"),
        (edited(variant="int4"), "variant 'int4' is not one of"),
    ],
)
def test_malformed_manifests_are_rejected_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ArtifactRejected, match=message) as caught:
        Manifest.from_bytes(raw, "meridian/3/eu-west-1/int8")
    assert caught.value.file == "manifest.json"


def test_a_manifest_missing_a_field_names_it() -> None:
    data = json.loads(manifest().to_bytes())
    del data["parent_version"]
    with pytest.raises(ArtifactRejected, match=r"missing fields \['parent_version'\]"):
        Manifest.from_bytes(json.dumps(data).encode(), "a")
