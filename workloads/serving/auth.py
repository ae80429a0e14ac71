"""Who is calling: API keys and OIDC bearer tokens (JWT) on the public listener.

A caller presents either `x-api-key: <id>.<secret>` (contract.API_KEY_HEADER) or
`Authorization: Bearer <JWT>`; the caller id is the key id or the token's `sub`. Anything else is
`Refused` (401, a V2 `{"error": ...}` body saying what is wrong), before any model work. Neither
check logs a secret or a token: only key ids and subjects.

API keys: the servers hold only salted SHA-256 digests (`contract.api_key_record`), from the
file ENV_API_KEYS_FILE (a mounted Secret), looked up by id and compared in constant time. The file
is re-read when it changes (`ApiKeys.reload_if_changed`, called off the request path about once
a second): keys are added and revoked without a restart; a broken file keeps the previous keys.

OIDC: PyJWT checks the signature against the issuer's JWKS, `exp` (with a small leeway for clock
skew), `iss` and `aud`, and requires `sub`. Only asymmetric algorithms are accepted, each bound to
the key types that can carry it, so neither `none` nor an HMAC "signed" with a public key gets
through (RFC 8725 section 3.1). The JWKS is cached by `kid`, refetched periodically and on an
unknown `kid` (at most every `min_refresh_interval_s`, in a thread: never on the event loop).
A verified token is remembered until it expires (bounded LRU), so a caller repeating its token
costs a dict lookup, not a signature check.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson

from workloads import contract

log = logging.getLogger(__name__)

# Asymmetric only, by the JWK key types that carry them (kty, crv). RFC 7518 section 3.1, RFC 8037.
ALGORITHMS: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}
LEEWAY_S = 30  # clock skew tolerated on exp/nbf/iat
TOKEN_CACHE_SIZE = 4096
JWKS_TIMEOUT_S = 5.0
_SHOWN = 64  # characters of a caller's own input echoed back in an error


class Refused(Exception):
    """The request is not admitted: `status` (401 here, 429 from the limits) and a message for
    the caller; `reason` labels the metric (a handful of fixed values)."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def _unauthorized(reason: str, message: str) -> Refused:
    return Refused(401, reason, message)


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


# ---- API keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyRecord:
    salt: bytes
    sha256: bytes


def parse_api_keys(raw: bytes) -> dict[str, _KeyRecord]:
    """The keys file: {"keys": [{"id", "salt" (hex), "sha256" (hex)}]}; ValueError says what is wrong."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from None
    entries = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(entries, list):
        raise ValueError('expected {"keys": [{"id": ..., "salt": <hex>, "sha256": <hex>}, ...]}')
    keys: dict[str, _KeyRecord] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "salt", "sha256")):
            raise ValueError(f"keys[{i}]: expected string fields id, salt and sha256")
        key_id = entry["id"]
        if not key_id or "." in key_id or key_id in keys:
            raise ValueError(f"keys[{i}]: id {key_id!r} is empty, has a '.', or repeats")
        try:
            record = _KeyRecord(bytes.fromhex(entry["salt"]), bytes.fromhex(entry["sha256"]))
        except ValueError:
            raise ValueError(f"keys[{i}] ({key_id}): salt and sha256 must be hex") from None
        if len(record.sha256) != 32:
            raise ValueError(f"keys[{i}] ({key_id}): sha256 must be 32 bytes of hex")
        keys[key_id] = record
    return keys


class ApiKeys:
    """The API keys file, re-read when it changes. Raises OSError/ValueError at construction
    when the file cannot be used (the process must not start open by accident)."""

    def __init__(self, path: Path):
        self.path = path
        self._seen = self._stat()
        self._keys = parse_api_keys(path.read_bytes())
        log.info("API keys from %s: %s", path, ", ".join(sorted(self._keys)) or "none")

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            # stat follows the symlinks a mounted Secret swaps atomically (..data -> ..<timestamp>).
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size

    def reload_if_changed(self) -> bool:
        """Re-read the file if its identity, time or size changed; True when the keys changed.
        A missing or broken file keeps the previous keys and says so, naming the file."""
        seen = self._stat()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            keys = parse_api_keys(self.path.read_bytes())
        except (OSError, ValueError) as err:
            log.error("API keys file %s is unusable, keeping the %d previous keys: %s", self.path, len(self._keys), err)
            return False
        if keys == self._keys:
            return False
        added, removed = set(keys) - set(self._keys), set(self._keys) - set(keys)
        self._keys = keys  # one assignment: the request path sees the old dict or the new one
        log.info(
            "API keys reloaded from %s: %d keys (added: %s; removed: %s)",
            self.path,
            len(keys),
            ", ".join(sorted(added)) or "none",
            ", ".join(sorted(removed)) or "none",
        )
        return True

    def caller(self, presented: str) -> str:
        """The key id of a valid `<id>.<secret>`, else Refused."""
        key_id, dot, secret = presented.strip().partition(".")
        if not dot or not key_id or not secret:
            raise _unauthorized(
                "malformed", f"malformed {contract.API_KEY_HEADER} header: expected '<key id>.<secret>'"
            )
        record = self._keys.get(key_id)
        if record is None:
            raise _unauthorized("unknown_key", f"unknown API key id {_shown(key_id)}")
        digest = contract.api_key_digest(record.salt, secret)
        if not hmac.compare_digest(bytes.fromhex(digest), record.sha256):
            raise _unauthorized("wrong_key", f"wrong secret for API key {key_id!r}")
        return key_id


# ---- OIDC bearer tokens ---------------------------------------------------------------------


def fetch_jwks(url: str) -> bytes:
    response = httpx.get(url, timeout=JWKS_TIMEOUT_S, follow_redirects=False)
    response.raise_for_status()
    return response.content


def parse_jwks(raw: bytes) -> dict[str, dict[str, jwt.PyJWK]]:
    """kid -> algorithm -> key, for each key of the set that can verify an accepted algorithm.
    A key naming its `alg` verifies only that one; keys for encryption (`use: enc`) are skipped."""
    value = orjson.loads(raw)
    entries = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(entries, list):
        raise ValueError('a JWKS is {"keys": [...]}')
    keys: dict[str, dict[str, jwt.PyJWK]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        named = entry.get("alg")
        for algorithm, (kty, crv) in ALGORITHMS.items():
            if entry.get("kty") != kty or (crv is not None and entry.get("crv") != crv):
                continue
            if named is not None and named != algorithm:
                continue
            try:
                keys.setdefault(entry["kid"], {})[algorithm] = jwt.PyJWK(entry, algorithm)
            except jwt.PyJWTError as err:
                log.warning("JWKS key %r unusable for %s: %s", entry["kid"], algorithm, err)
    return keys


@dataclass(frozen=True)
class _Verified:
    subject: str
    expires: float


class OidcVerifier:
    """Bearer tokens of one issuer and audience, verified against its JWKS."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        refresh_interval_s: float = 600.0,
        min_refresh_interval_s: float = 10.0,
        leeway_s: float = LEEWAY_S,
        cache_size: int = TOKEN_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self._refresh_interval_s = refresh_interval_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._leeway_s = leeway_s
        self._cache_size = cache_size
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, dict[str, jwt.PyJWK]] = {}
        self._jwks = b""  # the JWKS as last fetched and used
        self._fetched_at: float | None = None  # monotonic time of the last attempt
        self._fetch_lock = threading.Lock()
        self._fetching = False
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    # -- the key set --

    def refresh(self) -> bool:
        """Fetch the JWKS (blocking: call it from a thread). A failed fetch keeps the keys it had.
        True when the key set changed."""
        with self._fetch_lock:
            return self._fetch_keys()

    def refresh_if_due(self) -> None:
        """The periodic refresh (the gate's maintenance thread)."""
        if self._fetched_at is None or self._monotonic() - self._fetched_at >= self._refresh_interval_s:
            self.refresh()

    def _refresh_for(self, kid: str) -> None:
        """An unknown kid's refresh: after any fetch in flight, unless that one brought the kid,
        and at most every `min_refresh_interval_s` (unknown kids are cheap to send)."""
        with self._fetch_lock:
            if kid not in self._keys and self._may_refresh():
                self._fetch_keys()

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._monotonic() - self._fetched_at >= self._min_refresh_interval_s

    def _fetch_keys(self) -> bool:
        self._fetching = True
        self._fetched_at = self._monotonic()
        try:
            raw = fetch_jwks(self.jwks_url)
            keys = parse_jwks(raw)
        except Exception as err:  # unreachable, not JSON, no usable keys: keep what we had
            log.error("fetching the JWKS %s failed, keeping %d keys: %s", self.jwks_url, len(self._keys), err)
            return False
        finally:
            self._fetching = False
        if not keys:
            log.error("the JWKS %s has no usable signing keys, keeping %d keys", self.jwks_url, len(self._keys))
            return False
        if raw == self._jwks:
            return False
        log.info("JWKS %s: signing keys %s", self.jwks_url, ", ".join(sorted(keys)))
        self._jwks, self._keys = raw, keys
        self._verified = OrderedDict()  # a withdrawn or replaced key's tokens must not outlive it here
        return True

    # -- tokens --

    async def caller(self, token: str) -> str:
        """The `sub` of a valid token, else Refused. An unknown `kid` refetches the JWKS (in a
        thread, rate-limited) and tries once more."""
        cache = self._verified  # one dict throughout: a JWKS refresh (another thread) may swap it
        verified = cache.get(token)
        if verified is not None:
            if self._clock() <= verified.expires + self._leeway_s:
                cache.move_to_end(token)
                return verified.subject
            cache.pop(token, None)
            raise self._expired(verified.expires)
        try:
            return self._verify(token)
        except _UnknownKid as unknown:
            if not (self._fetching or self._may_refresh()):
                raise
            kid = unknown.kid
        await asyncio.to_thread(self._refresh_for, kid)
        return self._verify(token)

    def _verify(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("malformed", "malformed bearer token: not a signed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise _unauthorized(
                "bad_algorithm",
                f"bearer token algorithm {_shown(str(algorithm))} is not accepted: {', '.join(ALGORITHMS)}",
            )
        if not isinstance(kid, str):
            raise _unauthorized("malformed", "malformed bearer token: no 'kid' (signing key id) in its header")
        by_algorithm = self._keys.get(kid)
        if by_algorithm is None:
            raise _UnknownKid(kid)
        key = by_algorithm.get(algorithm)
        if key is None:
            raise _unauthorized("bad_algorithm", f"signing key {kid!r} does not sign with {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise self._expired(None) from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("wrong_audience", f"the bearer token is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("wrong_issuer", f"the bearer token was not issued by {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("bad_signature", "the bearer token's signature does not verify") from None
        except (jwt.PyJWTError, ValueError) as err:  # malformed segments, claims of the wrong type, nbf...
            raise _unauthorized("invalid_token", f"invalid bearer token: {err}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _unauthorized("invalid_token", "invalid bearer token: 'sub' must be a non-empty string")
        self._remember(token, _Verified(subject, float(claims["exp"])))
        return subject

    def _remember(self, token: str, verified: _Verified) -> None:
        cache = self._verified
        cache[token] = verified
        if len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _expired(self, expires: float | None) -> Refused:
        when = f" at {datetime.fromtimestamp(expires, UTC).isoformat()}" if expires is not None else ""
        return _unauthorized("expired", f"the bearer token expired{when}")


class _UnknownKid(Refused):
    def __init__(self, kid: str):
        super().__init__(401, "unknown_kid", f"signing key {_shown(kid)} is not among the issuer's keys")
        self.kid = kid


# ---- both ---------------------------------------------------------------------------------


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


_API_KEY = contract.API_KEY_HEADER.encode()


class Authenticator:
    """The credentials one listener accepts: API keys, OIDC tokens, or both."""

    def __init__(self, api_keys: ApiKeys | None, oidc: OidcVerifier | None):
        if api_keys is None and oidc is None:
            raise ValueError("an authenticator needs API keys, OIDC, or both")
        self.api_keys = api_keys
        self.oidc = oidc
        ways = [f"'{contract.API_KEY_HEADER}: <key id>.<secret>'"] if api_keys else []
        ways += ["'Authorization: Bearer <token>'"] if oidc else []
        self._missing = f"this route needs a credential: {' or '.join(ways)}"

    async def caller(self, scope: Mapping[str, Any]) -> tuple[str, str]:
        """(caller id, how: "api_key" or "oidc") of the request's credential, else Refused."""
        presented = _header(scope, _API_KEY)
        if presented is not None:
            if self.api_keys is None:
                raise _unauthorized(
                    "unsupported", "API keys are not accepted here: use 'Authorization: Bearer <token>'"
                )
            return self.api_keys.caller(presented), "api_key"
        authorization = _header(scope, b"authorization")
        if authorization is None:
            raise _unauthorized("missing", self._missing)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("malformed", "malformed Authorization header: expected 'Bearer <token>'")
        if self.oidc is None:
            raise _unauthorized("unsupported", f"bearer tokens are not accepted here: use '{contract.API_KEY_HEADER}'")
        return await self.oidc.caller(token), "oidc"

    def maintain(self) -> None:
        """Off the request path, about once a second: pick up a changed keys file, refresh the JWKS."""
        if self.api_keys is not None:
            self.api_keys.reload_if_changed()
        if self.oidc is not None:
            self.oidc.refresh_if_due()
