"""The signed model registry: publish, fetch-and-verify, load. See README.md in this folder."""

from workloads.registry.artifact import ArtifactId, ArtifactRejected, Manifest, Variant
from workloads.registry.http import HttpRegistry
from workloads.registry.signing import (
    Signer,
    SigningKeyError,
    generate_keypair,
    load_signer,
    load_signing_key,
    load_trusted_key,
)
from workloads.registry.store import fetch_verified, is_published, latest_version, publish, version_order
from workloads.registry.verified import VerifiedArtifact, load_model

__all__ = [
    "ArtifactId",
    "ArtifactRejected",
    "HttpRegistry",
    "Manifest",
    "Signer",
    "SigningKeyError",
    "Variant",
    "VerifiedArtifact",
    "fetch_verified",
    "generate_keypair",
    "is_published",
    "latest_version",
    "load_model",
    "load_signer",
    "load_signing_key",
    "load_trusted_key",
    "publish",
    "version_order",
]
