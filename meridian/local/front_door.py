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
readable by others, not even between a write and a chmod). The certificates come from
workloads/pki.py, the issuer of every certificate made on this machine.
"""

from __future__ import annotations

import datetime
import json
import secrets
import shlex
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from meridian.local.supervisor import LocalStackError
from workloads import contract, pki

CA_FILE = "ca.crt"
API_KEY_FILE = "api-key"
EXAMPLE_REQUEST_FILE = "example-request.json"
FILES_DIR = "front-door"
CA_NAME = "meridian local stack CA"
CURVE = ec.SECP256R1()
CA_VALIDITY = datetime.timedelta(days=365)
LEAF_VALIDITY = datetime.timedelta(days=90)
# A file about to expire is made again rather than reused: a fleet started now runs for hours.
RENEW_BEFORE = datetime.timedelta(days=1)
SECRET_BYTES = 32
SALT_BYTES = 16
LOOPBACK_NAMES = ("localhost", "127.0.0.1")  # what the fleet's URLs name: https://127.0.0.1:<port>, or localhost


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
        ca = pki.Authority.keep_or_create(
            pki.Issued(self.ca_cert, self.ca_key), CA_NAME, CURVE, CA_VALIDITY, RENEW_BEFORE
        )
        for name in servers:
            self._ensure_leaf(ca, name, pki.Leaf(name, pki.Purpose.SERVER, LOOPBACK_NAMES))
        for name in edges:
            self._ensure_leaf(ca, self.client_name(name), pki.Leaf(name, pki.Purpose.CLIENT))
        self._ensure_api_key(key_id)
        if not self.admin_token.exists():
            pki.write_private(self.admin_token, secrets.token_urlsafe(SECRET_BYTES).encode())

    def _ensure_leaf(self, ca: pki.Authority, name: str, leaf: pki.Leaf) -> None:
        ca.keep_or_issue(leaf, pki.Issued(self.cert(name), self.key(name)), LEAF_VALIDITY, RENEW_BEFORE)

    def _ensure_api_key(self, key_id: str) -> None:
        """The users' key and the servers' record of it; a new key when the file is not this
        stack's (another key id) or the record no longer matches it."""
        try:
            current_id, secret = self.api_key.read_text().strip().split(".", 1)
        except (OSError, ValueError):
            current_id, secret = "", ""
        if current_id != key_id or not secret:
            secret = secrets.token_urlsafe(SECRET_BYTES)
            pki.write_private(self.api_key, f"{key_id}.{secret}\n".encode())
        if not self._records_match(key_id, secret):
            record = contract.api_key_record(key_id, secrets.token_bytes(SALT_BYTES), secret)
            pki.write_private(self.api_keys_file, json.dumps({"keys": [record]}, indent=1).encode())

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
