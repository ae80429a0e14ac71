"""Callers' credentials for the serving tests and the serving benchmark: an API keys file as the
stack writes it, and an OIDC issuer with keys generated here, its JWKS served over real HTTP on
loopback (what the servers fetch), and tokens it signs."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from workloads import contract

ISSUER = "https://issuer.test"
AUDIENCE = "meridian-inference"


def write_api_keys(path: Path, keys: Mapping[str, str]) -> Path:
    """Write {id: secret} as the servers' keys file (salted hashes only), replacing the file the
    way a Secret volume update does: a new file renamed over the old one."""
    records = [contract.api_key_record(key_id, secrets.token_bytes(16), secret) for key_id, secret in keys.items()]
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fresh.write_text(json.dumps({"keys": records}))
    os.replace(fresh, path)
    return path


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Issuer:
    """An OIDC issuer: signing keys by kid (each with its algorithm), published in `jwks`."""

    issuer: str = ISSUER
    audience: str = AUDIENCE
    keys: dict[str, tuple[str, PrivateKey]] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)

    def add_key(self, kid: str, algorithm: str = "RS256", *, publish: bool = True) -> None:
        key: PrivateKey
        if algorithm in ("RS256", "PS256"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        self.keys[kid] = (algorithm, key)
        if publish:
            self.published.add(kid)

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid in sorted(self.published):
            _, key = self.keys[kid]
            if isinstance(key, rsa.RSAPrivateKey):
                entry = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            elif isinstance(key, ec.EllipticCurvePrivateKey):
                entry = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            else:
                entry = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
            entries.append({**entry, "kid": kid, "use": "sig"})
        return {"keys": entries}

    def token(
        self, kid: str, subject: str = "user-1", *, lifetime_s: float = 300, sign_with: str | None = None, **claims: Any
    ) -> str:
        """A token naming `kid`, signed by that key (or by `sign_with`'s: a forgery); `claims`
        override the standard ones (None drops one)."""
        algorithm, key = self.keys[sign_with or kid]
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "exp": now + int(lifetime_s)}
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm, headers={"kid": kid})


@contextmanager
def jwks_server(issuer: Issuer) -> Iterator[tuple[str, list[str]]]:
    """Serve `issuer.jwks()` (as it is at each request) on a free loopback port: yields its URL
    and the list of paths requested so far (one entry per fetch)."""
    fetches: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            body = json.dumps(issuer.jwks()).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", fetches
    finally:
        server.shutdown()
        server.server_close()
