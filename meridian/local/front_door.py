"""The local stack's front door: the keys and certificates its fleet is called with.

The clusters get theirs from Pulumi (the stack's CA, Pulumi secret config, RandomPassword);
`make up` makes the same set once per out dir, on this machine, and reuses it while it is
valid, so that the fleet on loopback is called exactly as a `kubernetes` region is: HTTPS on
every public listener (a certificate per server and edge for 127.0.0.1/localhost, signed by
the stack's CA), an API key per user (only its salted hash reaches the servers,
`contract.api_key_record`), mutual TLS from each edge to its region's escalation listener (a
client certificate per edge from the same CA), and an admin token for the canary
controllers on the admin ports. Prometheus scrapes the metrics ports as before: plain HTTP on
loopback, as in the clusters.

Files, under the out dir: `ca.crt` (what a caller verifies against), `api-key` (the users'
key, `<id>.<secret>`, mode 0600), and `front-door/` (the CA's key, each process's certificate
and key, the servers' API keys file, the admin token). Secrets are created 0600 (never
readable by others, not even between a write and a chmod).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shlex
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meridian.local.supervisor import LocalStackError
from workloads import contract

CA_FILE = "ca.crt"
API_KEY_FILE = "api-key"
EXAMPLE_REQUEST_FILE = "example-request.json"
FILES_DIR = "front-door"
CA_VALIDITY = datetime.timedelta(days=365)
LEAF_VALIDITY = datetime.timedelta(days=90)
# A file about to expire is made again rather than reused: a fleet started now runs for hours.
RENEW_BEFORE = datetime.timedelta(days=1)
SECRET_BYTES = 32
SALT_BYTES = 16
LOOPBACK_NAMES = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


def _write_secret(path: Path, data: bytes) -> None:
    """Write `data` to a new file created with mode 0600, then move it over `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_der(key: ec.EllipticCurvePublicKey | CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_pair(cert_file: Path, key_file: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """A certificate and its key, if both parse, match and the certificate is not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _public_der(key.public_key()) != _public_der(
        cert.public_key()
    ):
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < datetime.datetime.now(datetime.UTC):
        return None
    return cert, key


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class Caller:
    """How a user calls the local fleet: the users' API key, verifying the servers against the CA."""

    api_key: str
    ca_file: Path

    @property
    def headers(self) -> dict[str, str]:
        return {contract.API_KEY_HEADER: self.api_key}

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass(frozen=True)
class FrontDoor:
    """The front door's files under one out dir (absolute)."""

    out: Path

    @property
    def ca_cert(self) -> Path:
        return self.out / CA_FILE

    @property
    def api_key(self) -> Path:
        return self.out / API_KEY_FILE

    @property
    def files(self) -> Path:
        return self.out / FILES_DIR

    @property
    def ca_key(self) -> Path:
        return self.files / "ca.key"

    @property
    def api_keys_file(self) -> Path:
        """What the servers read (contract.ENV_API_KEYS_FILE): salted hashes only."""
        return self.files / contract.API_KEYS_FILE

    @property
    def admin_token(self) -> Path:
        """The repository API's bearer token (contract.ENV_ADMIN_TOKEN_FILE)."""
        return self.files / "admin-token"

    def cert(self, name: str) -> Path:
        """`name`'s certificate: a process's server certificate (`server-local-us`), or an edge's
        client certificate (`client_name`)."""
        return self.files / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.files / f"{name}.key"

    @staticmethod
    def client_name(edge: str) -> str:
        """An edge's client certificate (its common name is the edge's process name, which the
        region's escalation listener takes as the calling edge)."""
        return f"{edge}.client"

    @property
    def example_request(self) -> Path:
        """One held-out example as a V2 JSON request (written once the data is ready)."""
        return self.out / EXAMPLE_REQUEST_FILE

    def curl(self, server_url: str) -> str:
        """A shell command that calls `server_url` as a user would: verifying it against the
        CA, with the API key read from its file (never printed)."""
        ca, key, body = (shlex.quote(_shown(p)) for p in (self.ca_cert, self.api_key, self.example_request))
        return (
            f'curl --fail-with-body --cacert {ca} -H "{contract.API_KEY_HEADER}: $(cat {key})" '
            f"-H 'content-type: application/json' {server_url}/v2/models/{contract.MODEL_NAME}/infer -d @{body}"
        )

    def caller(self) -> Caller:
        try:
            api_key = self.api_key.read_text().strip()
        except OSError as err:
            raise LocalStackError(f"no API key at {self.api_key} ({err.strerror}): run `make up` first") from None
        return Caller(api_key, self.ca_cert)

    # -- making (or reusing) the files ------------------------------------------------------------
    def ensure(self, key_id: str, servers: Iterable[str], edges: Iterable[str]) -> None:
        """Everything the fleet needs: a server certificate per process in `servers` (regional
        servers and edges, by process name), a client certificate per process in `edges`, the
        users' API key `key_id.<secret>` and the servers' hashes of it, the admin token. What is
        present and valid is kept; the rest is made."""
        self.files.mkdir(parents=True, exist_ok=True)
        ca, ca_key = self._ensure_ca()
        for name in servers:
            self._ensure_leaf(name, ca, ca_key, server=True)
        for name in edges:
            self._ensure_leaf(self.client_name(name), ca, ca_key, server=False, common_name=name)
        self._ensure_api_key(key_id)
        if not self.admin_token.exists():
            _write_secret(self.admin_token, secrets.token_urlsafe(SECRET_BYTES).encode())

    def _ensure_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        pair = _load_pair(self.ca_cert, self.ca_key)
        if pair is not None and _issued_by(pair[0], pair[0]):
            return pair
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meridian local stack CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_secret(self.ca_key, _pem_key(key))
        _write_public(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def _ensure_leaf(
        self,
        name: str,
        ca: x509.Certificate,
        ca_key: ec.EllipticCurvePrivateKey,
        server: bool,
        common_name: str | None = None,
    ) -> None:
        """`name`'s certificate and key; its subject is `common_name` (default: `name`)."""
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or name)])
        pair = _load_pair(self.cert(name), self.key(name))
        if pair is not None and _issued_by(pair[0], ca) and pair[0].subject == subject:
            return
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:  # what the fleet's URLs name: https://127.0.0.1:<port>, or localhost
            builder = builder.add_extension(x509.SubjectAlternativeName(LOOPBACK_NAMES), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_secret(self.key(name), _pem_key(key))
        _write_public(self.cert(name), cert.public_bytes(serialization.Encoding.PEM))

    def _ensure_api_key(self, key_id: str) -> None:
        """The users' key and the servers' record of it; a new key when the file is not this
        stack's (another key id) or the record no longer matches it."""
        try:
            current_id, secret = self.api_key.read_text().strip().split(".", 1)
        except (OSError, ValueError):
            current_id, secret = "", ""
        if current_id != key_id or not secret:
            secret = secrets.token_urlsafe(SECRET_BYTES)
            _write_secret(self.api_key, f"{key_id}.{secret}\n".encode())
        if not self._records_match(key_id, secret):
            record = contract.api_key_record(key_id, secrets.token_bytes(SALT_BYTES), secret)
            _write_secret(self.api_keys_file, json.dumps({"keys": [record]}, indent=1).encode())

    def _records_match(self, key_id: str, secret: str) -> bool:
        try:
            keys = json.loads(self.api_keys_file.read_text())["keys"]
            return [
                k["id"] == key_id and contract.api_key_digest(bytes.fromhex(k["salt"]), secret) == k["sha256"]
                for k in keys
            ] == [True]
        except (OSError, ValueError, KeyError, TypeError):
            return False


def _shown(path: Path) -> str:
    """`path` as the operator would type it: relative to the working directory when under it."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
