"""Ed25519 keys and manifest signatures.

`manifest.sig` is a small JSON document: the algorithm, the signing key's id (for error messages
only: trust comes from the key the consumer holds, never from this field) and the base64
signature over the exact bytes of manifest.json.

What signs is named by one string, the workloads' `--signing-key` (`load_signer`): a path to an
Ed25519 private key (PEM, PKCS#8; on clusters without a KMS, mounted from a Kubernetes Secret),
or a cloud KMS key, `awskms:///<key ARN>` or `gcpkms://projects/.../cryptoKeyVersions/<n>`
(workloads/registry/kms.py). Either way the signature is pure Ed25519 and verifies with the
public key alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workloads.contract import SIGNING_KEY_FILE, TRUSTED_KEY_FILE
from workloads.registry.artifact import MANIFEST_FILE, SIGNATURE_FILE, ArtifactRejected

ALGORITHM = "ed25519"


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair to `out_dir`; the private key is readable by its owner only."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / SIGNING_KEY_FILE, out_dir / TRUSTED_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists: refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 rather than chmod-ed afterwards, so the key is never readable by others.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path


def load_signing_key(key: Ed25519PrivateKey | str | Path) -> Ed25519PrivateKey:
    if isinstance(key, Ed25519PrivateKey):
        return key
    loaded = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{key} is not an Ed25519 private key")
    return loaded


def load_trusted_key(key: Ed25519PublicKey | str | Path) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    loaded = serialization.load_pem_public_key(Path(key).read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{key} is not an Ed25519 public key")
    return loaded


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_manifest(manifest_bytes: bytes, key: SigningKey) -> bytes:
    """The content of manifest.sig for these manifest bytes."""
    signer = load_signer(key)
    document = {
        "algorithm": ALGORITHM,
        "key_id": key_id(signer.public_key),
        "signature": base64.b64encode(signer.sign(manifest_bytes)).decode(),
    }
    return json.dumps(document, sort_keys=True).encode()


def verify_signature(
    manifest_bytes: bytes, signature_file: bytes, trusted_key: Ed25519PublicKey, artifact: str
) -> None:
    """Raise ArtifactRejected unless `signature_file` is the trusted key's signature of the bytes."""

    def reject(reason: str) -> ArtifactRejected:
        return ArtifactRejected(artifact, SIGNATURE_FILE, reason)

    try:
        document = json.loads(signature_file)
        algorithm, signer, encoded = document["algorithm"], document["key_id"], document["signature"]
        signature = base64.b64decode(encoded, validate=True)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, binascii.Error):
        raise reject("malformed signature file") from None
    if algorithm != ALGORITHM:
        raise reject(f"algorithm {algorithm!r} is not {ALGORITHM!r}")
    trusted = key_id(trusted_key)
    try:
        trusted_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        if signer != trusted:
            raise reject(f"signed by key {signer}, not by the trusted key {trusted}") from None
        raise ArtifactRejected(
            artifact, MANIFEST_FILE, "does not match its signature (modified after signing)"
        ) from None


# -- signers: one interface for a PEM key and the clouds' KMS -------------------------------------


class SigningKeyError(ValueError):
    """A signing key that cannot sign: its message names the key ref and the cause."""


class Signer(Protocol):
    """Signs bytes with an Ed25519 private key it may never reveal."""

    @property
    def ref(self) -> str:
        """What names the key in messages: a path or a KMS key ref."""
        ...

    @property
    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, message: bytes) -> bytes:
        """A pure Ed25519 signature (RFC 8032) of `message`."""
        ...


SigningKey = Signer | Ed25519PrivateKey | str | Path
AWS_KMS_SCHEME = "awskms://"
GCP_KMS_SCHEME = "gcpkms://"


def load_signer(key: SigningKey, *, kms_endpoint: str | None = None) -> Signer:
    """The signer `key` names: a path (PEM), `awskms:///<arn>`, `gcpkms://<key version>`, or a key.

    A KMS signer reads its public key now, so a missing permission or a wrong key spec fails
    before any work. `kms_endpoint` replaces the cloud's KMS endpoint (a private endpoint; tests).
    """
    if isinstance(key, Ed25519PrivateKey):
        return PemSigner("in-memory key", key)
    if not isinstance(key, str | Path):
        return key
    ref = str(key)
    if ref.startswith((AWS_KMS_SCHEME, GCP_KMS_SCHEME)):
        # Imported here: only publishers sign, and readers (the edge image) have no cloud clients.
        from workloads.registry.kms import connect_kms

        return connect_kms(ref, kms_endpoint)
    return PemSigner(ref, load_signing_key(key))


@dataclass(frozen=True)
class PemSigner:
    """An Ed25519 private key in this process (read from a PEM file)."""

    ref: str
    key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)
