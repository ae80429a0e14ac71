"""Callers' credentials on the public listener: API keys and OIDC bearer tokens admit their
caller; a missing, malformed, wrong, expired, wrong-audience, wrong-issuer or badly signed one
gets 401 with a V2 error and costs no model work; the health routes stay open. The keys file is
re-read while the server runs, and the JWKS is refetched when a new signing key appears.

In-process through the ASGI app with real signed models, a keys file as the stack writes it, and
an issuer whose JWKS is served over real HTTP on loopback; the key file rotation on a real
uvicorn server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workloads.serving.credentials import AUDIENCE, ISSUER, Issuer, jwks_server, write_api_keys
from tests.workloads.serving.support import (
    INFER,
    MODEL,
    Registry,
    app_for,
    asgi_client,
    digits,
    exposition,
    infer_body,
    make_registry,
    serving,
    started,
)
from workloads import contract
from workloads.serving import auth
from workloads.serving.app import InferenceApp, LocalAnswerer
from workloads.serving.auth import Authenticator, OidcVerifier
from workloads.serving.gate import Gate
from workloads.serving.protocol import InferRequest
from workloads.serving.settings import Oidc
from workloads.serving.versions import ServedVersion

pytestmark = pytest.mark.anyio
X, _ = digits()
BODY = json.dumps(infer_body(X[:1])).encode()
KEYS = {"alice": "alice-secret-0123456789", "bob": "bob-secret-0123456789"}


class CountingAnswerer(LocalAnswerer):
    """The model, counting the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def answer(self, request: InferRequest, served: ServedVersion) -> tuple[np.ndarray, dict[str, Any]]:
        self.calls += 1
        return await super().answer(request, served)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1})


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    issuer = Issuer()
    for kid, algorithm in [("rsa", "RS256"), ("pss", "PS256"), ("ec", "ES256"), ("ed", "EdDSA")]:
        issuer.add_key(kid, algorithm)
    issuer.add_key("unpublished", "RS256", publish=False)
    return issuer


@pytest.fixture(scope="module")
def jwks(issuer: Issuer) -> Iterator[str]:
    with jwks_server(issuer) as (url, _):
        yield url


def api_key(key_id: str) -> dict[str, str]:
    return {contract.API_KEY_HEADER: f"{key_id}.{KEYS[key_id]}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def guarded(
    registry: Registry, jwks: str, tmp_path: Path
) -> AsyncIterator[tuple[InferenceApp, CountingAnswerer]]:
    answerer = CountingAnswerer()
    app = app_for(
        registry,
        tmp_path,
        answerer=answerer,
        api_keys_file=write_api_keys(tmp_path / "keys.json", KEYS),
        oidc=Oidc(ISSUER, AUDIENCE, jwks),
    )
    await started(app)
    yield app, answerer
    await app.shutdown()


async def test_health_routes_stay_open_and_every_other_route_needs_a_credential(guarded) -> None:
    app, answerer = guarded
    async with asgi_client(app) as client:
        assert (await client.get(contract.LIVENESS_PATH)).status_code == 200
        assert (await client.get(contract.READINESS_PATH)).status_code == 200
        for method, path in [
            ("POST", INFER),
            ("POST", f"/v2/models/{MODEL}/versions/v1/infer"),
            ("GET", f"/v2/models/{MODEL}"),
            ("GET", f"/v2/models/{MODEL}/ready"),
            ("GET", "/v2"),
            ("POST", f"/v2/models/{MODEL}/feedback"),
            ("POST", f"/v2/repository/models/{MODEL}/load"),
            ("GET", "/nowhere"),
        ]:
            response = await client.request(method, path, json=infer_body(X[:1]))
            assert response.status_code == 401, (method, path)
            assert response.json() == {
                "error": "this route needs a credential: 'x-api-key: <key id>.<secret>' or 'Authorization: Bearer <token>'"
            }
    assert answerer.calls == 0


async def test_an_api_key_or_a_token_of_each_algorithm_is_admitted_as_its_caller(guarded, issuer: Issuer) -> None:
    app, answerer = guarded
    async with asgi_client(app) as client:
        assert (await client.post(INFER, json=infer_body(X[:1]), headers=api_key("alice"))).status_code == 200
        assert (await client.get(f"/v2/models/{MODEL}", headers=api_key("bob"))).json()["name"] == MODEL
        for kid in ("rsa", "pss", "ec", "ed"):
            token = issuer.token(kid, subject=f"user-{kid}")
            assert (await client.post(INFER, json=infer_body(X[:1]), headers=bearer(token))).status_code == 200
    assert answerer.calls == 5
    scraped = exposition(app.metrics)
    assert 'meridian_inference_caller_requests_total{caller="alice",status="200"} 1.0' in scraped
    assert 'meridian_inference_caller_requests_total{caller="bob",status="200"} 1.0' in scraped
    assert 'meridian_inference_caller_requests_total{caller="user-ed",status="200"} 1.0' in scraped
    assert "alice-secret" not in scraped


def forged_hs256(issuer: Issuer, kid: str) -> str:
    """The classic confusion: an HMAC 'signed' with the issuer's public key as the secret."""
    public = (
        issuer.keys[kid][1]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    signature = base64.urlsafe_b64encode(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{signature.rstrip(b'=').decode()}"


def refused_cases(issuer: Issuer) -> list[tuple[str, dict[str, str], str, str]]:
    """(case, headers, metric reason, what the error says)."""
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 300}, None, "none"
    )
    return [
        ("missing", {}, "missing", "needs a credential"),
        ("api key without a secret", {contract.API_KEY_HEADER: "alice"}, "malformed", "'<key id>.<secret>'"),
        ("basic auth", {"authorization": "Basic YWxpY2U6cw=="}, "malformed", "'Bearer <token>'"),
        ("empty bearer", {"authorization": "Bearer "}, "malformed", "'Bearer <token>'"),
        ("not a JWT", bearer("not-a-token"), "malformed", "not a signed JWT"),
        (
            "unknown key id",
            {contract.API_KEY_HEADER: f"carol.{KEYS['alice']}"},
            "unknown_key",
            "unknown API key id 'carol'",
        ),
        ("wrong secret", {contract.API_KEY_HEADER: "alice.guess"}, "wrong_key", "wrong secret for API key 'alice'"),
        ("expired", bearer(issuer.token("rsa", lifetime_s=-120)), "expired", "expired"),
        ("wrong audience", bearer(issuer.token("rsa", aud="someone-else")), "wrong_audience", AUDIENCE),
        ("wrong issuer", bearer(issuer.token("rsa", iss="https://evil.test")), "wrong_issuer", ISSUER),
        ("bad signature", bearer(issuer.token("rsa", sign_with="unpublished")), "bad_signature", "does not verify"),
        ("unknown kid", bearer(issuer.token("unpublished")), "unknown_kid", "'unpublished' is not among"),
        ("alg none", bearer(unsigned), "bad_algorithm", "'none' is not accepted"),
        ("HS256 with the public key", bearer(forged_hs256(issuer, "rsa")), "bad_algorithm", "'HS256' is not accepted"),
        ("ES256 header on an RSA key", bearer(issuer.token("rsa", sign_with="ec")), "bad_algorithm", "does not sign"),
        ("no subject", bearer(issuer.token("rsa", sub=None)), "invalid_token", "sub"),
        ("not yet valid", bearer(issuer.token("rsa", nbf=int(time.time()) + 3600)), "invalid_token", "not yet valid"),
    ]


async def test_a_missing_malformed_wrong_or_expired_credential_gets_401_and_no_model_work(
    guarded, issuer: Issuer
) -> None:
    app, answerer = guarded
    cases = refused_cases(issuer)
    async with asgi_client(app) as client:
        for case, headers, reason, says in cases:
            response = await client.post(INFER, json=infer_body(X[:1]), headers=headers)
            assert response.status_code == 401, case
            assert says in response.json()["error"], (case, response.json())
            assert f'meridian_inference_auth_failures_total{{reason="{reason}"}}' in exposition(app.metrics), case
    assert answerer.calls == 0
    assert KEYS["alice"] not in exposition(app.metrics)


def oidc_app(registry: Registry, cache: Path, verifier: OidcVerifier, answerer: CountingAnswerer) -> InferenceApp:
    """A server admitting `verifier`'s tokens only (its clocks are the test's)."""
    app = app_for(registry, cache, answerer=answerer)
    app.gate = Gate(app.metrics, authenticator=Authenticator(None, verifier), maintenance_interval_s=3600)
    return app


async def test_a_repeated_token_is_verified_once_and_refused_once_it_expires(
    registry: Registry, issuer: Issuer, jwks: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = []
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decoded.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counting_decode)
    now = [time.time()]
    app = oidc_app(registry, tmp_path, OidcVerifier(ISSUER, AUDIENCE, jwks, clock=lambda: now[0]), CountingAnswerer())
    await started(app)
    token = issuer.token("ec", lifetime_s=60)
    async with asgi_client(app) as client:
        for _ in range(5):
            assert (await client.get(f"/v2/models/{MODEL}", headers=bearer(token))).status_code == 200
        assert decoded == [token]
        # Past exp (and the leeway), the remembered token is refused without a signature check.
        now[0] += 60 + auth.LEEWAY_S + 1
        expired = await client.get(f"/v2/models/{MODEL}", headers=bearer(token))
        assert expired.status_code == 401 and "expired at" in expired.json()["error"]
        assert decoded == [token]
    await app.shutdown()


async def test_the_jwks_is_refetched_for_a_new_signing_key_at_most_every_min_interval(
    registry: Registry, tmp_path: Path
) -> None:
    issuer = Issuer()
    issuer.add_key("old", "ES256")
    now = [0.0]
    answerer = CountingAnswerer()
    with jwks_server(issuer) as (url, fetches):
        verifier = OidcVerifier(ISSUER, AUDIENCE, url, min_refresh_interval_s=10, monotonic=lambda: now[0])
        verifier.refresh()  # as the maintenance thread's first tick would
        app = oidc_app(registry, tmp_path, verifier, answerer)
        await started(app)
        async with asgi_client(app) as client:
            assert (
                await client.post(INFER, json=infer_body(X[:1]), headers=bearer(issuer.token("old")))
            ).status_code == 200
            assert len(fetches) == 1
            issuer.add_key("new", "EdDSA")  # the issuer rotates: the new key is published...
            now[0] = 5.0  # ...within the minimum interval of the last fetch: not refetched yet
            soon = await client.post(INFER, json=infer_body(X[:1]), headers=bearer(issuer.token("new")))
            assert soon.status_code == 401 and "'new' is not among" in soon.json()["error"]
            assert len(fetches) == 1
            now[0] = 10.0  # past it: the unknown kid refetches the JWKS (in a thread), then verifies
            later = await client.post(INFER, json=infer_body(X[:1]), headers=bearer(issuer.token("new")))
            assert later.status_code == 200 and len(fetches) == 2
            # The old key is withdrawn: tokens it signed stop verifying after the next refresh.
            issuer.published.discard("old")
            now[0] = 700.0
            verifier.refresh_if_due()
            withdrawn = await client.post(INFER, json=infer_body(X[:1]), headers=bearer(issuer.token("old")))
            assert withdrawn.status_code == 401 and len(fetches) == 3
        await app.shutdown()
    assert answerer.calls == 2


def test_the_keys_file_is_reread_while_the_server_runs(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys_file = write_api_keys(tmp_path / "keys.json", {"alice": KEYS["alice"]})
    with serving(app_for(registry, tmp_path, api_keys_file=keys_file)) as url, httpx.Client(base_url=url) as client:

        def status(key_id: str) -> int:
            return client.post(INFER, json=infer_body(X[:1]), headers=api_key(key_id)).status_code

        def eventually(key_id: str, expected: int) -> None:
            deadline = time.monotonic() + 20
            while status(key_id) != expected:
                assert time.monotonic() < deadline, f"{key_id} never got {expected}"
                time.sleep(0.1)

        assert status("alice") == 200 and status("bob") == 401
        write_api_keys(keys_file, KEYS)  # bob added
        eventually("bob", 200)
        write_api_keys(keys_file, {"bob": KEYS["bob"]})  # alice revoked
        eventually("alice", 401)
        with caplog.at_level(logging.ERROR, logger="workloads.serving.auth"):
            keys_file.write_text("{not json")  # a broken file keeps the keys it had
            deadline = time.monotonic() + 20
            while str(keys_file) not in caplog.text:
                assert time.monotonic() < deadline, "the broken file was never reported"
                time.sleep(0.1)
        assert status("bob") == 200 and status("alice") == 401
    assert KEYS["bob"] not in caplog.text


# ---- fuzz: whatever the credential headers hold, never a 5xx, never model work on a 401 ------

FUZZ_EXAMPLES = 800
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
latin1 = st.text(st.characters(max_codepoint=255), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def segment(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def mutated(draw: st.DrawFn, tokens: list[str]) -> str:
    """A valid token with one thing changed: a character, a cut, a segment swapped or rebuilt."""
    token = draw(st.sampled_from(tokens))
    header, payload, signature = token.split(".")
    how = draw(st.integers(0, 5))
    if how == 0:
        i = draw(st.integers(0, len(token) - 1))
        return token[:i] + draw(st.sampled_from(BASE64URL + ".=+/ ")) + token[i + 1 :]
    if how == 1:
        return token[: draw(st.integers(0, len(token) - 1))]
    if how == 2:
        return ".".join(draw(st.permutations([header, payload, signature])))
    if how == 3:  # a header of any shape: alg and kid of every type, or not an object at all
        fields = draw(st.fixed_dictionaries({}, optional={"alg": json_values, "kid": json_values, "typ": json_values}))
        forged = draw(st.just(fields) | json_values)
        return f"{segment(forged)}.{payload}.{signature}"
    if how == 4:  # claims of any shape under the real header and signature
        return f"{header}.{segment(draw(json_values))}.{signature}"
    return f"{header}.{payload}.{segment(draw(st.binary(max_size=300)))}"


def credential_headers(tokens: list[str]) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    key_id = st.sampled_from([*KEYS, "carol", ""]) | latin1
    api_keys = st.one_of(
        latin1,
        st.builds(lambda i, s: f"{i}.{s}", key_id, latin1),
        st.builds(lambda i: f"{i}.{KEYS['alice']}", key_id),
        st.just(f"alice.{KEYS['bob']}"),
    )
    bearer_values = st.one_of(mutated(tokens), latin1, st.sampled_from(tokens).map(lambda t: t + "."))
    authorization = st.one_of(
        latin1,
        st.builds(
            lambda scheme, value: f"{scheme} {value}",
            st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", ""]),
            bearer_values,
        ),
    )
    one = st.one_of(
        st.tuples(st.just(contract.API_KEY_HEADER), api_keys), st.tuples(st.just("authorization"), authorization)
    )
    return st.lists(one, max_size=3).map(lambda pairs: [(k.encode(), v.encode("latin-1")) for k, v in pairs])


async def call(app: InferenceApp, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": INFER,
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


@pytest.fixture(scope="module")
def fuzzed(
    registry: Registry, issuer: Issuer, jwks: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[asyncio.AbstractEventLoop, InferenceApp, CountingAnswerer, list[str]]]:
    loop = asyncio.new_event_loop()
    tmp = tmp_path_factory.mktemp("fuzz")
    answerer = CountingAnswerer()
    app = app_for(
        registry,
        tmp,
        answerer=answerer,
        max_batch_wait_ms=0.0,
        api_keys_file=write_api_keys(tmp / "keys.json", KEYS),
        oidc=Oidc(ISSUER, AUDIENCE, jwks),
    )
    loop.run_until_complete(started(app))
    tokens = [issuer.token(kid, subject=f"fuzz-{kid}") for kid in ("rsa", "pss", "ec", "ed")]
    yield loop, app, answerer, tokens
    loop.run_until_complete(app.shutdown())
    loop.close()


fuzz_statuses: list[int] = []


@pytest.mark.slow
@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)
@given(data=st.data())
def test_fuzzed_credentials_never_get_a_5xx_and_a_401_never_reaches_the_model(fuzzed, data: st.DataObject) -> None:
    loop, app, answerer, tokens = fuzzed
    headers = data.draw(credential_headers(tokens))
    before = answerer.calls
    status, body = loop.run_until_complete(call(app, headers, BODY))
    fuzz_statuses.append(status)
    assert status < 500, body
    if status == 401:
        assert answerer.calls == before
        assert isinstance(json.loads(body)["error"], str)


def test_the_credential_fuzz_sent_hundreds_of_requests_and_most_were_refused(fuzzed) -> None:
    loop, app, _, tokens = fuzzed
    assert len(fuzz_statuses) >= FUZZ_EXAMPLES * 0.9
    assert fuzz_statuses.count(401) > len(fuzz_statuses) / 2
    status, _ = loop.run_until_complete(call(app, [(b"authorization", f"Bearer {tokens[0]}".encode())], BODY))
    assert status == 200


async def test_an_unreachable_jwks_refuses_tokens_with_401_and_names_the_url(
    registry: Registry, issuer: Issuer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with jwks_server(issuer) as (url, _):
        pass  # stopped: nothing listens there any more
    answerer = CountingAnswerer()
    app = oidc_app(registry, tmp_path, OidcVerifier(ISSUER, AUDIENCE, url), answerer)
    await started(app)
    async with asgi_client(app) as client:
        with caplog.at_level(logging.ERROR, logger="workloads.serving.auth"):
            response = await client.post(INFER, json=infer_body(X[:1]), headers=bearer(issuer.token("rsa")))
    await app.shutdown()
    assert response.status_code == 401 and "'rsa' is not among the issuer's keys" in response.json()["error"]
    assert f"fetching the JWKS {url} failed" in caplog.text
    assert answerer.calls == 0
