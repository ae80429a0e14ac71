"""Artifact signing by a cloud KMS: the private key never leaves the cloud's key service.

- `awskms:///<key ARN>`: AWS KMS, key spec ECC_NIST_EDWARDS25519 (SIGN_VERIFY). Sign with
  SigningAlgorithm ED25519_SHA_512 and MessageType RAW is pure Ed25519 (RFC 8032), so the
  signature verifies with the plain public key like a PEM key's. RAW messages are at most 4096
  bytes (docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html, read 2026-11-30); our
  manifests are ~0.5-0.7 KB. A larger one is refused before anything is written: the only
  digest mode, ED25519_PH_SHA_512, is Ed25519ph, which `cryptography` cannot verify (it
  implements pure Ed25519 only), so no consumer could check it.
- `gcpkms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>/cryptoKeyVersions/<n>`: Cloud
  KMS, algorithm EC_SIGN_ED25519: `asymmetricSign` with `data` is pure Ed25519
  (cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings.cryptoKeys.cryptoKeyVersions/asymmetricSign,
  read 2026-11-30), over REST with google-auth's AuthorizedSession (no KMS client library).
Credentials are the pod's: IRSA on EKS (botocore's default chain), Workload Identity on GKE
(Application Default Credentials). The public key is read when the signer is made, so a missing
permission or a wrong key spec fails before any work, and every signature is verified with it
before use, so a key that signs anything but pure Ed25519 fails at publish, not at every reader.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import google.auth
import google.auth.exceptions
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.auth.transport.requests import AuthorizedSession

from workloads.registry.signing import AWS_KMS_SCHEME, GCP_KMS_SCHEME, Signer, SigningKeyError

AWS_KEY_SPEC, AWS_ALGORITHM = "ECC_NIST_EDWARDS25519", "ED25519_SHA_512"
AWS_MAX_MESSAGE_BYTES = 4096  # Sign's RAW limit
GCP_ALGORITHM = "EC_SIGN_ED25519"
GCP_KMS_ENDPOINT = "https://cloudkms.googleapis.com"
GCP_KMS_SCOPE = "https://www.googleapis.com/auth/cloudkms"
_AWS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:(key|alias)/[^/]+$")
_GCP_KEY_VERSION = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/\d+$")
_TIMEOUT_S = 30


def connect_kms(ref: str, endpoint: str | None = None) -> Signer:
    """The signer of a KMS key ref; `endpoint` replaces the cloud's KMS endpoint (private endpoints, tests)."""
    if ref.startswith(AWS_KMS_SCHEME):
        return AwsKmsSigner.connect(ref, endpoint)
    return GcpKmsSigner.connect(ref, endpoint)


def _ed25519_public(key: Any, ref: str, algorithm: str) -> Ed25519PublicKey:
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{ref}: the key is {algorithm}, not Ed25519: artifact signatures are Ed25519")
    return key


def _checked(ref: str, public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> bytes:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise SigningKeyError(f"{ref}: the KMS signature does not verify with the key's public key") from None
    return signature


@dataclass(frozen=True)
class AwsKmsSigner:
    """An AWS KMS key of spec ECC_NIST_EDWARDS25519; credentials from the AWS environment (IRSA)."""

    ref: str
    arn: str
    client: Any  # botocore's KMS client for the key's region
    public_key: Ed25519PublicKey

    @classmethod
    def connect(cls, ref: str, endpoint: str | None = None) -> AwsKmsSigner:
        arn = ref.removeprefix(AWS_KMS_SCHEME + "/")
        match = _AWS_KEY_ARN.match(arn) if ref.startswith(AWS_KMS_SCHEME + "/") else None
        if match is None:
            raise SigningKeyError(f"{ref}: expected awskms:///arn:aws:kms:<region>:<account>:key/<key id>")
        client = botocore.session.get_session().create_client(
            "kms",
            region_name=match["region"],  # the key's own region: KMS keys are regional
            endpoint_url=endpoint,
            config=botocore.config.Config(connect_timeout=10, read_timeout=_TIMEOUT_S, retries={"mode": "standard"}),
        )
        reply = _aws_call(ref, client, "GetPublicKey", KeyId=arn)
        if reply.get("KeySpec") != AWS_KEY_SPEC or AWS_ALGORITHM not in reply.get("SigningAlgorithms", []):
            raise SigningKeyError(
                f"{ref}: key spec {reply.get('KeySpec')} (usage {reply.get('KeyUsage')}) cannot sign"
                f" {AWS_ALGORITHM}: create the key with KeySpec {AWS_KEY_SPEC}, KeyUsage SIGN_VERIFY"
            )
        public = serialization.load_der_public_key(reply["PublicKey"])
        return cls(ref, arn, client, _ed25519_public(public, ref, AWS_KEY_SPEC))

    def sign(self, message: bytes) -> bytes:
        if len(message) > AWS_MAX_MESSAGE_BYTES:
            raise SigningKeyError(
                f"{self.ref}: AWS KMS signs at most {AWS_MAX_MESSAGE_BYTES} bytes as a RAW message;"
                f" this manifest is {len(message)} bytes"
            )
        reply = _aws_call(
            self.ref,
            self.client,
            "Sign",
            KeyId=self.arn,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=AWS_ALGORITHM,
        )
        return _checked(self.ref, self.public_key, message, reply["Signature"])


def _aws_call(ref: str, client: Any, operation: str, **request: Any) -> dict[str, Any]:
    method = {"GetPublicKey": client.get_public_key, "Sign": client.sign}[operation]
    try:
        return method(**request)
    except botocore.exceptions.ClientError as err:
        error = err.response.get("Error", {})
        raise SigningKeyError(
            f"{ref}: AWS KMS {operation} failed: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except botocore.exceptions.BotoCoreError as err:  # no credentials, endpoint unreachable, ...
        raise SigningKeyError(f"{ref}: AWS KMS {operation} failed: {err}") from None


@dataclass(frozen=True)
class GcpKmsSigner:
    """A Cloud KMS key version of algorithm EC_SIGN_ED25519; credentials from Application Default
    Credentials (GKE Workload Identity's metadata server in the pod)."""

    ref: str
    url: str  # <endpoint>/v1/projects/.../cryptoKeyVersions/<n>
    session: AuthorizedSession
    public_key: Ed25519PublicKey

    @classmethod
    def connect(cls, ref: str, endpoint: str | None = None) -> GcpKmsSigner:
        name = ref.removeprefix(GCP_KMS_SCHEME)
        if not _GCP_KEY_VERSION.match(name):
            raise SigningKeyError(
                f"{ref}: expected gcpkms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>/cryptoKeyVersions/<n>"
            )
        try:
            credentials, _ = google.auth.default(scopes=[GCP_KMS_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as err:
            raise SigningKeyError(f"{ref}: no Google credentials: {err}") from None
        session, url = AuthorizedSession(credentials), f"{(endpoint or GCP_KMS_ENDPOINT).rstrip('/')}/v1/{name}"
        reply = _gcp_call(ref, session, "getPublicKey", "GET", f"{url}/publicKey")
        if reply.get("algorithm") != GCP_ALGORITHM:
            raise SigningKeyError(
                f"{ref}: algorithm {reply.get('algorithm')} cannot sign Ed25519: create the key with {GCP_ALGORITHM}"
            )
        public = serialization.load_pem_public_key(str(reply["pem"]).encode())
        return cls(ref, url, session, _ed25519_public(public, ref, GCP_ALGORITHM))

    def sign(self, message: bytes) -> bytes:
        body = {"data": base64.b64encode(message).decode()}
        reply = _gcp_call(self.ref, self.session, "asymmetricSign", "POST", f"{self.url}:asymmetricSign", body)
        return _checked(self.ref, self.public_key, message, base64.b64decode(reply["signature"]))


def _gcp_call(
    ref: str, session: AuthorizedSession, method: str, verb: str, url: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    try:
        response = session.request(verb, url, json=body, timeout=_TIMEOUT_S)
    except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as err:
        raise SigningKeyError(f"{ref}: Cloud KMS {method} failed: {err}") from None
    if not response.ok:
        try:
            error = response.json()["error"]
            cause = f"{error.get('status')}: {error.get('message')}"
        except (ValueError, KeyError, TypeError):
            cause = f"HTTP {response.status_code}: {response.text[:200]}"
        raise SigningKeyError(f"{ref}: Cloud KMS {method} failed: {cause}")
    return response.json()
