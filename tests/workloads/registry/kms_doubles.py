"""Protocol doubles of AWS KMS and Cloud KMS that sign Ed25519 for real, on loopback.

No emulator signs Ed25519: moto 5.2.5 (the latest) has no ECC_NIST_EDWARDS25519 key spec
(moto/kms/utils.py), and Google ships no Cloud KMS emulator. So each double speaks its cloud's
wire protocol (checked from the request the real client sends) and signs with a real Ed25519
key; the clients under test are the real ones (botocore's KMS client; google-auth's
AuthorizedSession, which exchanges a service account's signed JWT at the double's token endpoint).
- AWS KMS: JSON 1.1 protocol, `POST /` with `X-Amz-Target: TrentService.<Operation>`, blobs in
  base64; errors are HTTP 400 with `{"__type": ..., "message": ...}`.
- Cloud KMS: REST v1, `GET /v1/<key version>/publicKey`, `POST /v1/<key version>:asymmetricSign`
  with `{"data": <base64>}`; errors are `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

AWS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GCP_KEY_VERSION = "projects/meridian/locations/europe-west4/keyRings/meridian/cryptoKeys/signing/cryptoKeyVersions/1"
ACCESS_TOKEN = "ya29.double-token"


@dataclass
class KmsDouble:
    """One key, served over one cloud's protocol. `deny`: the caller lacks permission."""

    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    deny: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)  # method, path, headers (lower case), body
    endpoint: str = ""

    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        assert isinstance(self.key, Ed25519PrivateKey), "the double signs with Ed25519 keys only"
        return self.key.sign(message)


class _Handler(BaseHTTPRequestHandler):
    double: KmsDouble

    def log_message(self, *_: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, body: dict[str, Any], content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        call = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "raw": raw,
        }
        self.double.requests.append(call)
        return call


class _AwsKms(_Handler):
    """KMS's JSON protocol: GetPublicKey and Sign."""

    def do_POST(self) -> None:
        call = self._record()
        body = json.loads(call["raw"])
        operation = self.headers.get("X-Amz-Target", "").removeprefix("TrentService.")
        content_type = "application/x-amz-json-1.1"

        def error(kind: str, message: str) -> None:
            self._reply(400, {"__type": kind, "message": message}, content_type)

        if body.get("KeyId") != AWS_KEY_ARN:
            return error("NotFoundException", f"Key '{body.get('KeyId')}' does not exist")
        if self.double.deny:
            return error(
                "AccessDeniedException",
                f"User: arn:aws:sts::123456789012:assumed-role/localizer/pod is not authorized to perform:"
                f" kms:{operation} on resource: {AWS_KEY_ARN} because no identity-based policy allows it",
            )
        ed25519 = isinstance(self.double.key, Ed25519PrivateKey)
        spec = "ECC_NIST_EDWARDS25519" if ed25519 else "ECC_NIST_P256"
        algorithms = ["ED25519_SHA_512", "ED25519_PH_SHA_512"] if ed25519 else ["ECDSA_SHA_256"]
        if operation == "GetPublicKey":
            return self._reply(
                200,
                {
                    "KeyId": AWS_KEY_ARN,
                    "PublicKey": base64.b64encode(self.double.public_der()).decode(),
                    "KeySpec": spec,
                    "KeyUsage": "SIGN_VERIFY",
                    "SigningAlgorithms": algorithms,
                },
                content_type,
            )
        if operation == "Sign":
            message = base64.b64decode(body["Message"])
            if body.get("SigningAlgorithm") not in algorithms:
                return error("InvalidKeyUsageException", f"{body.get('SigningAlgorithm')} is not valid for {spec}")
            if body.get("MessageType", "RAW") != "RAW" or not 1 <= len(message) <= 4096:
                return error("ValidationException", "Message must be a RAW message of 1 to 4096 bytes")
            return self._reply(
                200,
                {
                    "KeyId": AWS_KEY_ARN,
                    "Signature": base64.b64encode(self.double.sign(message)).decode(),
                    "SigningAlgorithm": body["SigningAlgorithm"],
                },
                content_type,
            )
        return error("UnknownOperationException", operation)


class _CloudKms(_Handler):
    """Cloud KMS REST v1: getPublicKey and asymmetricSign; plus the OAuth token endpoint."""

    def _error(self, code: int, status: str, message: str) -> None:
        self._reply(code, {"error": {"code": code, "message": message, "status": status}})

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            return False
        if self.double.deny:
            self._error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'cloudkms.cryptoKeyVersions.useToSign' denied on resource '{GCP_KEY_VERSION}'"
                " (or it may not exist).",
            )
            return False
        return True

    def _algorithm(self) -> str:
        return "EC_SIGN_ED25519" if isinstance(self.double.key, Ed25519PrivateKey) else "EC_SIGN_P256_SHA256"

    def do_GET(self) -> None:
        self._record()
        if self.path != f"/v1/{GCP_KEY_VERSION}/publicKey":
            self._error(404, "NOT_FOUND", f"{self.path} not found")
        elif self._authorized():
            pem = self.double.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self._reply(200, {"pem": pem.decode(), "algorithm": self._algorithm(), "name": GCP_KEY_VERSION})

    def do_POST(self) -> None:
        call = self._record()
        if self.path == "/token":  # google-auth exchanging a service account's signed JWT for a token
            self._reply(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        elif self.path != f"/v1/{GCP_KEY_VERSION}:asymmetricSign":
            self._error(404, "NOT_FOUND", f"{self.path} not found")
        elif self._authorized():
            body = json.loads(call["raw"])
            if "data" not in body or self._algorithm() != "EC_SIGN_ED25519":
                self._error(400, "INVALID_ARGUMENT", "EC_SIGN_ED25519 keys sign `data`, not `digest`")
            else:
                signature = self.double.sign(base64.b64decode(body["data"]))
                self._reply(200, {"signature": base64.b64encode(signature).decode(), "name": GCP_KEY_VERSION})


@contextmanager
def _serving(handler: type[_Handler], double: KmsDouble) -> Iterator[KmsDouble]:
    bound = type(handler.__name__, (handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), bound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()


def aws_kms(double: KmsDouble) -> Any:
    """`with aws_kms(KmsDouble()) as kms:` serves AWS KMS's protocol at `kms.endpoint`."""
    return _serving(_AwsKms, double)


def cloud_kms(double: KmsDouble) -> Any:
    """`with cloud_kms(KmsDouble()) as kms:` serves Cloud KMS's REST API at `kms.endpoint`."""
    return _serving(_CloudKms, double)


def service_account_file(directory: Path, token_endpoint: str) -> Path:
    """Application Default Credentials of a service account whose token exchange goes to
    `token_endpoint` (google-auth honours a key file's `token_uri`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = directory / "adc.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "meridian",
                "private_key_id": "double",
                "private_key": pem.decode(),
                "client_email": "localizer@meridian.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_endpoint,
            }
        )
    )
    return path
