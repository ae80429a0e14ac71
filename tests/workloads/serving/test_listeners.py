"""The server process's listeners on real sockets, with real certificates of a test CA: each
listener answers only its own routes; the escalation listener admits an edge only with a client
certificate of the stack's CA (the handshake refuses anything else) and counts its requests by
edge and original caller; the HTTPS public listener refuses TLS 1.1."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.workloads.serving.certificates import LOOPBACK, TestCa
from tests.workloads.serving.support import (
    ADMIN_AUTH,
    INFER,
    LOAD,
    MODEL,
    Registry,
    Urls,
    app_for,
    digits,
    exposition,
    infer_body,
    listening,
    make_registry,
)
from workloads.contract import CALLER_HEADER, LIVENESS_PATH, METRICS_PATH, READINESS_PATH
from workloads.pki import Issued
from workloads.serving.app import InferenceApp, Role
from workloads.serving.runner import Listener, server_tls

X, _ = digits()
METADATA = f"/v2/models/{MODEL}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"), {"v1": 1, "v2": 2})


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("stack-ca"))


@pytest.fixture(scope="module")
def region(
    registry: Registry, ca: TestCa, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InferenceApp, Urls]]:
    """A regional server with its three listeners: public (plain HTTP, behind a load balancer),
    escalation (mutual TLS with the stack's CA) and admin."""
    app = app_for(registry, tmp_path_factory.mktemp("cache"))
    server = ca.server("region")
    listeners = (
        Listener(Role.PUBLIC, 0, None),
        Listener(Role.ESCALATION, 0, server_tls(server.cert, server.key, ca.cert)),
        Listener(Role.ADMIN, 0, None),
    )
    with listening(app, listeners) as urls:
        yield app, urls


def edge_client(ca: TestCa, identity: Issued | None) -> httpx.Client:
    """A client of the escalation listener, verifying the region with the stack's CA and
    presenting `identity` (None: no client certificate)."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return httpx.Client(verify=context, timeout=10)


def handshakes(url: str, ca: TestCa, identity: Issued | None) -> bool:
    """Whether a TLS 1.2 handshake completes: in TLS 1.2 the server judges the client's
    certificate inside the handshake (in TLS 1.3, after the client's side of it finished)."""
    context = ssl.create_default_context(cafile=str(ca.cert))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        try:
            context.wrap_socket(raw, server_hostname=LOOPBACK).close()
        except ssl.SSLError:
            return False
    return True


def test_the_repository_api_and_metrics_never_answer_on_the_public_listener(region) -> None:
    _, urls = region
    with httpx.Client(base_url=urls.public) as public:
        assert public.get(LIVENESS_PATH).status_code == 200 and public.get(READINESS_PATH).status_code == 200
        load = public.post(LOAD, json={"parameters": {"stable": "v1"}}, headers=ADMIN_AUTH)
        metrics = public.get(METRICS_PATH)
    assert load.status_code == 404 and load.json() == {"error": f"no route for {LOAD}"}
    assert metrics.status_code == 404


def test_the_admin_listener_serves_metadata_and_the_repository_api_to_the_admin_token_only(region) -> None:
    _, urls = region
    with httpx.Client(base_url=str(urls.admin)) as admin:
        anonymous = admin.get(METADATA)
        wrong = admin.get(METADATA, headers={"authorization": "Bearer nope"})
        metadata = admin.get(METADATA, headers=ADMIN_AUTH)
        loaded = admin.post(LOAD, json={"parameters": {"stable": "v1"}}, headers=ADMIN_AUTH)
        inference = admin.post(INFER, json=infer_body(X[:1]), headers=ADMIN_AUTH)
        elsewhere = [admin.get(path, headers=ADMIN_AUTH).status_code for path in (METRICS_PATH, LIVENESS_PATH)]
    assert anonymous.status_code == wrong.status_code == 401
    assert "Bearer <admin token>" in anonymous.json()["error"]
    assert metadata.status_code == 200 and metadata.json()["parameters"]["stable"] == "v1"
    assert loaded.status_code == 200 and loaded.json()["stable"] == "v1"
    assert inference.status_code == 404 and elsewhere == [404, 404]


@pytest.mark.parametrize(
    "identity",
    ["none", "another CA's client certificate", "a server certificate of the stack's CA"],
)
def test_the_escalation_listener_refuses_the_handshake_without_an_edge_certificate(
    region, ca: TestCa, tmp_path: Path, identity: str
) -> None:
    _, urls = region
    presented = {
        "none": None,
        "another CA's client certificate": TestCa(tmp_path / "other", "another CA").client("edge-nyc"),
        "a server certificate of the stack's CA": ca.server("not-an-edge"),
    }[identity]
    assert urls.escalation is not None
    assert not handshakes(urls.escalation, ca, presented)
    with edge_client(ca, presented) as client, pytest.raises(httpx.TransportError):
        client.post(f"{urls.escalation}{INFER}", json=infer_body(X[:1]))  # TLS 1.3: refused after the handshake


def test_an_edge_certificate_escalates_and_the_region_counts_it_by_edge_and_caller(region, ca: TestCa) -> None:
    app, urls = region
    edge = ca.client("edge-nyc")
    assert urls.escalation is not None and handshakes(urls.escalation, ca, edge)
    with edge_client(ca, edge) as client:
        answers = [
            client.post(f"{urls.escalation}{INFER}", json=infer_body(X[:1]), headers={CALLER_HEADER: "acme"})
            for _ in range(3)
        ]
        metadata = client.get(f"{urls.escalation}{METADATA}")
        refused = {
            path: client.request(method, f"{urls.escalation}{path}", json={}).status_code
            for method, path in (("POST", LOAD), ("POST", f"{METADATA}/feedback"), ("GET", METRICS_PATH))
        }
    assert [a.status_code for a in answers] == [200] * 3 and metadata.status_code == 200
    assert refused == {LOAD: 404, f"{METADATA}/feedback": 404, METRICS_PATH: 404}
    counted = 'meridian_escalations_received_total{caller="acme",edge="edge-nyc",model="meridian"} 3.0'
    assert counted in exposition(app.metrics)


def tls_1_1_client(ca: TestCa) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.1 only at security level 0
    return context


def negotiated(port: int, context: ssl.SSLContext) -> str | None:
    """The TLS version a handshake with `context` reaches on `port`; None: refused."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=LOOPBACK) as tls:
                return tls.version()
        except ssl.SSLError:
            return None


def test_the_tls_1_1_client_below_speaks_tls_1_1_to_a_server_that_allows_it(ca: TestCa) -> None:
    """The control for the next test: its refusal is the server's, not the client's inability."""
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    certificate = ca.server("permissive")
    permissive.load_cert_chain(certificate.cert, certificate.key)
    with socket.create_server((LOOPBACK, 0)) as listener:
        port = listener.getsockname()[1]
        accept = threading.Thread(target=lambda: _handshake_once(listener, permissive), daemon=True)
        accept.start()
        version = negotiated(port, tls_1_1_client(ca))
        accept.join(timeout=10)
    assert version == "TLSv1.1"


def _handshake_once(listener: socket.socket, context: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    with context.wrap_socket(connection, server_side=True):
        pass


def test_the_https_public_listener_refuses_tls_1_1_and_serves_tls_1_2_and_1_3(
    registry: Registry, ca: TestCa, tmp_path: Path
) -> None:
    public = ca.server("public")
    listeners = (Listener(Role.PUBLIC, 0, server_tls(public.cert, public.key)),)
    with listening(app_for(registry, tmp_path), listeners) as urls:
        port = int(urls.public.rsplit(":", 1)[1])
        old = negotiated(port, tls_1_1_client(ca))
        versions = {}
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            context = ssl.create_default_context(cafile=str(ca.cert))
            context.minimum_version = context.maximum_version = version
            with httpx.Client(verify=context) as client:
                versions[version] = client.get(f"{urls.public}{LIVENESS_PATH}").status_code
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}{LIVENESS_PATH}")  # no plain HTTP on an HTTPS listener
    assert old is None
    assert versions == {ssl.TLSVersion.TLSv1_2: 200, ssl.TLSVersion.TLSv1_3: 200}


def served_common_name(port: int, ca: TestCa) -> str:
    context = ssl.create_default_context(cafile=str(ca.cert))
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        certificate = tls.getpeercert() or {}
    return next(value for rdn in certificate["subject"] for key, value in rdn if key == "commonName")


def test_a_renewed_certificate_is_served_without_a_restart(registry: Registry, ca: TestCa, tmp_path: Path) -> None:
    """As the kubelet swaps a mounted Secret's files: the next handshakes get the new certificate."""
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    cert, key = mounted / "tls.crt", mounted / "tls.key"
    first = ca.server("first")
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    listeners = (Listener(Role.PUBLIC, 0, server_tls(cert, key), (cert, key)),)
    with listening(app_for(registry, tmp_path / "cache"), listeners, certificate_check_s=0.05) as urls:
        port = int(urls.public.rsplit(":", 1)[1])
        before = served_common_name(port, ca)
        renewed = ca.server("renewed")
        for source, target in ((renewed.key, key), (renewed.cert, cert)):
            staged = target.with_suffix(".new")
            shutil.copy(source, staged)
            staged.replace(target)
        deadline = time.monotonic() + 20
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.05)
            after = served_common_name(port, ca)
    assert (before, after) == ("first", "renewed")
