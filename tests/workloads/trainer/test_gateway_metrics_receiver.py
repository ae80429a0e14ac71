"""The gateway as the home's metrics receiver: mutual TLS with the federation CA, a plain-http
upstream inside the cluster, and one route, `POST /api/v1/write`.

A client without a certificate, or with one the federation CA did not sign for client
authentication, is refused at the TLS handshake, before any request; a valid client reaches
only the receive path. The end-to-end test puts a real Prometheus with its remote-write
receiver behind the gateway and a second real Prometheus, remote-writing with a client
certificate, in front of it: what the other regions' Prometheus servers do.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from workloads import contract
from workloads.pki import Authority, Issued, Leaf, Purpose
from workloads.trainer.certs import FederationCredentials, generate
from workloads.trainer.launch import REPO_ROOT, free_port, stop_tree

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
needs_prometheus = pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="no prometheus binary")


def _client_cert(creds: FederationCredentials, out: Path, purpose: Purpose) -> Issued:
    """A certificate signed by the federation CA for `purpose` (a client's, or a server's)."""
    ca = Authority.load(creds.authority)
    return ca.issue(Leaf("remote-write eu", purpose, ["localhost"]), Issued.named(out, "client"), dt.timedelta(days=1))


@dataclass
class RecordingUpstream:
    """A plain-http server standing in for the home Prometheus: it records what reaches it."""

    received: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.received.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass(frozen=True)
class Receiver:
    url: str  # https://127.0.0.1:<port>
    port: int
    creds: FederationCredentials


def _start_receiver(upstream: str, creds: FederationCredentials, log: Path) -> tuple[subprocess.Popen[bytes], Receiver]:
    port = free_port()
    command = [
        sys.executable, "-m", contract.SUPERLINK_GATEWAY_MODULE,
        "--upstream", upstream,
        "--route", f"{port}={contract.METRICS_RECEIVE_ROUTE}",
        "--client-ca-certfile", str(creds.ca_cert),
        "--certfile", str(creds.superlink_cert), "--keyfile", str(creds.superlink_key),
        "--host", "127.0.0.1",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, Receiver(f"https://127.0.0.1:{port}", port, creds)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_tree(process)
                raise RuntimeError(f"the gateway did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


def _client_tls(creds: FederationCredentials, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(creds.ca_cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _handshakes(receiver: Receiver, client: Issued | None) -> bool:
    """Whether a TLS 1.2 handshake with the gateway completes: in TLS 1.2 the server judges
    the client's certificate inside the handshake (in TLS 1.3 only after the client's side of
    it has finished, see _answer)."""
    context = _client_tls(receiver.creds, client)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as raw:
        try:
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()
        except ssl.SSLError:
            return False
    return True


def _answer(receiver: Receiver, client: Issued | None) -> str:
    """The status line a TLS 1.3 client gets for a request, or "" when the gateway hangs up."""
    context = _client_tls(receiver.creds, client)
    with (
        socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: receiver\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    return answer.decode().partition("\r\n")[0]


@pytest.fixture(scope="module")
def credentials(tmp_path_factory) -> FederationCredentials:
    return generate(tmp_path_factory.mktemp("certs"), ["eu"])


@pytest.fixture(scope="module")
def client(credentials, tmp_path_factory) -> Issued:
    return _client_cert(credentials, tmp_path_factory.mktemp("client"), Purpose.CLIENT)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RecordingUpstream, str]]:
    app = RecordingUpstream()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def receiver(upstream, credentials, tmp_path_factory) -> Iterator[Receiver]:
    process, running = _start_receiver(upstream[1], credentials, tmp_path_factory.mktemp("gw") / "gateway.log")
    try:
        yield running
    finally:
        stop_tree(process)


@pytest.fixture
def recorded(upstream) -> list[tuple[str, str]]:
    upstream[0].received.clear()
    return upstream[0].received


def test_a_valid_client_certificate_passes_the_handshake(receiver, client):
    assert _handshakes(receiver, client)
    assert _answer(receiver, client) == "HTTP/1.1 404 Not Found"  # not the receive route


def test_a_client_without_a_certificate_is_refused_at_the_handshake(receiver, recorded):
    assert not _handshakes(receiver, None)
    assert _answer(receiver, None) == ""
    assert recorded == []


def test_a_client_certificate_of_another_ca_is_refused_at_the_handshake(receiver, recorded, tmp_path):
    stranger = generate(tmp_path / "other", ["eu"])
    foreign = _client_cert(stranger, tmp_path / "foreign", Purpose.CLIENT)
    assert not _handshakes(receiver, foreign)
    assert _answer(receiver, foreign) == ""
    assert recorded == []


def test_a_federation_certificate_not_issued_for_client_auth_is_refused(receiver, recorded, credentials, tmp_path):
    """The SuperLink's server certificate is signed by the same CA: it still gets no entry."""
    server_only = _client_cert(credentials, tmp_path / "server", Purpose.SERVER)
    assert not _handshakes(receiver, server_only)
    assert recorded == []


def test_a_valid_client_reaches_the_upstream_on_the_receive_path_only(receiver, recorded, client):
    with httpx.Client(base_url=receiver.url, verify=_client_tls(receiver.creds, client)) as session:
        written = session.post(contract.METRICS_RECEIVE_PATH, content=b"snappy")
        others = [
            session.get(contract.METRICS_RECEIVE_PATH),  # the path, but not the method
            session.post(f"{contract.METRICS_RECEIVE_PATH}/x", content=b""),
            session.get("/api/v1/query", params={"query": "up"}),  # nothing is read back this way
            session.get("/federate"),
            session.post("/api/v1/admin/tsdb/delete_series", content=b""),
            session.get("/-/reload"),
        ]
    assert written.status_code == 204
    assert [answer.status_code for answer in others] == [404] * len(others)
    assert recorded == [("POST", contract.METRICS_RECEIVE_PATH)]


def test_an_https_upstream_needs_its_ca_and_an_http_one_takes_none(credentials, capsys):
    from workloads.trainer.gateway import main

    files = ["--certfile", str(credentials.superlink_cert), "--keyfile", str(credentials.superlink_key),
             "--route", f"{free_port()}={contract.METRICS_RECEIVE_ROUTE}"]  # fmt: skip
    assert main([*files, "--upstream", "https://127.0.0.1:9090"]) == 2
    assert "with --ca-certfile" in capsys.readouterr().err
    assert main([*files, "--upstream", "ftp://127.0.0.1:9090"]) == 2
    assert "expected https://HOST:PORT, or http://HOST:PORT" in capsys.readouterr().err
    assert main([*files, "--upstream", "http://127.0.0.1:9090", "--client-ca-certfile", "/nonexistent/ca.crt"]) == 2
    assert "--client-ca-certfile /nonexistent/ca.crt: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("9443=post /api/v1/write", "expected PORT=METHOD /PATH"),
        ("9443=POST api/v1/write", "expected PORT=METHOD /PATH"),
        ("9443=POST /api/v1/write extra", "expected PORT=METHOD /PATH"),
    ],
)
def test_a_bad_exact_route_is_refused_with_a_message_naming_it(route, message):
    from workloads.trainer.gateway import GatewayError, parse_route

    with pytest.raises(GatewayError, match=message):
        parse_route(route)


def _start_prometheus(tmp: Path, config: str, port: int, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "prometheus.yml").write_text(config)
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra,
        ],
        stdout=(tmp / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    try:
        return httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=2).json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []


@needs_prometheus
def test_a_regions_prometheus_remote_writes_through_the_receiver_to_the_homes(credentials, client, tmp_path):
    """The home sees the region's series, with the region's external `cluster` label."""
    home, home_url = _start_prometheus(
        tmp_path / "home", "global:\n  scrape_interval: 1m\n", free_port(), "--web.enable-remote-write-receiver"
    )
    gateway, receiver = _start_receiver(home_url, credentials, tmp_path / "gateway.log")
    region_port = free_port()
    region_config = f"""
global:
  scrape_interval: 1s
  external_labels: {{cluster: eu-cluster}}
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ['127.0.0.1:{region_port}'], labels: {{region: eu, app: prometheus}}}}]
remote_write:
  - url: {receiver.url}{contract.METRICS_RECEIVE_PATH}
    tls_config: {{ca_file: {credentials.ca_cert}, cert_file: {client.cert}, key_file: {client.key}}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
"""
    region, _ = _start_prometheus(tmp_path / "region", region_config, region_port)
    try:
        deadline = time.monotonic() + 90
        while not (seen := _query(home_url, 'up{cluster="eu-cluster"}')):
            if time.monotonic() > deadline or region.poll() is not None or home.poll() is not None:
                raise AssertionError(
                    "the home never received the region's series:\n"
                    + (tmp_path / "region" / "prometheus.log").read_text()[-3000:]
                    + (tmp_path / "gateway.log").read_text()[-3000:]
                )
            time.sleep(0.5)
    finally:
        for process in (region, gateway, home):
            stop_tree(process)
    assert seen[0]["metric"] | {"instance": ""} == {
        "__name__": "up",
        "cluster": "eu-cluster",
        "region": "eu",
        "app": "prometheus",
        "job": "self",
        "instance": "",
    }
    assert f'"POST {contract.METRICS_RECEIVE_PATH} HTTP/1.1" 204' in (tmp_path / "gateway.log").read_text()
