"""The SuperLink gateway: each port forwards only its own path prefix to the SuperLink, over
TLS both ways, streaming; everything else is answered 404 without reaching the SuperLink.

The fast tests put a recording HTTPS server behind the real gateway process; the slow one puts
a real Flower SuperLink (TLS, SuperNode authentication) behind it and a real SuperNode in front.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from workloads import contract
from workloads.tasks.__main__ import prepare_data
from workloads.trainer.certs import FederationCredentials, generate
from workloads.trainer.gateway import main
from workloads.trainer.launch import CONNECTION, REPO_ROOT, LocalFederation, Node, free_port, stop_tree

NODE_AUTH_HEADERS = {
    "flwr-public-key": "cHVibGlj",
    "flwr-signature": "c2lnbmF0dXJl",
    "flwr-timestamp": "2026-01-01T00:00:00+00:00",
}


@dataclass
class RecordingUpstream:
    """An HTTPS server standing in for the SuperLink: it records what reaches it.

    /v1/fleet/echo answers 201 with what it received; /v1/control/stream sends one chunk, then
    waits for `release` before the last; /v1/control/hang sends one chunk and then waits for
    the client to leave, which it records in `disconnected`."""

    received: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "raw_path": scope["raw_path"].decode(),
                "query": scope["query_string"].decode(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body.decode(),
            }
        )
        if scope["path"] == "/v1/fleet/echo":
            answer = json.dumps(self.received[-1]).encode()
            headers = [(b"content-type", b"application/json"), (b"x-upstream", b"yes")]
            await send({"type": "http.response.start", "status": 201, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/flower-protobuf-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        if scope["path"] == "/v1/control/stream":
            while not self.release.is_set():  # noqa: ASYNC110 - a threading.Event set by the test's thread
                await anyio.sleep(0.02)
            await send({"type": "http.response.body", "body": b"last"})
        else:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()


@dataclass(frozen=True)
class Gateway:
    fleet: str  # https://127.0.0.1:<fleet port>
    control: str
    ca: Path


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _start_gateway(
    upstream: str, creds: FederationCredentials, log: Path, upstream_ca: Path | None = None
) -> tuple[subprocess.Popen[bytes], Gateway]:
    fleet_port, control_port = free_port(), free_port()
    command = [
        sys.executable, "-m", contract.SUPERLINK_GATEWAY_MODULE,
        "--upstream", upstream,
        "--route", f"{fleet_port}={contract.FLEET_PATH_PREFIX}",
        "--route", f"{control_port}={contract.CONTROL_PATH_PREFIX}",
        "--certfile", str(creds.superlink_cert), "--keyfile", str(creds.superlink_key),
        "--ca-certfile", str(upstream_ca or creds.ca_cert),
        "--host", "127.0.0.1",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    gateway = Gateway(f"https://127.0.0.1:{fleet_port}", f"https://127.0.0.1:{control_port}", creds.ca_cert)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{gateway.fleet}/", verify=_trusting(creds.ca_cert), timeout=1)
            httpx.get(f"{gateway.control}/", verify=_trusting(creds.ca_cert), timeout=1)
            return process, gateway
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_tree(process)
                raise RuntimeError(f"the gateway did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def credentials(tmp_path_factory) -> FederationCredentials:
    return generate(tmp_path_factory.mktemp("certs"), ["eu"])


@pytest.fixture(scope="module")
def upstream(credentials) -> Iterator[tuple[RecordingUpstream, str]]:
    app = RecordingUpstream()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(credentials.superlink_cert),
            ssl_keyfile=str(credentials.superlink_key),
            lifespan="off",
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield app, f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def gateway(upstream, credentials, tmp_path_factory) -> Iterator[Gateway]:
    process, running = _start_gateway(upstream[1], credentials, tmp_path_factory.mktemp("gateway") / "gateway.log")
    try:
        yield running
    finally:
        stop_tree(process)


@pytest.fixture
def recorded(upstream) -> list[dict[str, Any]]:
    upstream[0].received.clear()
    return upstream[0].received


def test_a_fleet_request_reaches_the_superlink_as_sent_and_its_answer_comes_back_as_given(gateway, recorded):
    answer = httpx.post(
        f"{gateway.fleet}/v1/fleet/echo?node=7&x=a%2Fb",
        content=b"\x08\x07protobuf",
        headers={"content-type": "application/protobuf", **NODE_AUTH_HEADERS},
        verify=_trusting(gateway.ca),
    )
    assert answer.status_code == 201
    assert answer.headers["x-upstream"] == "yes"
    seen = answer.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/v1/fleet/echo", "node=7&x=a%2Fb")
    assert seen["body"] == "\x08\x07protobuf"
    assert {k: seen["headers"][k] for k in NODE_AUTH_HEADERS} == NODE_AUTH_HEADERS
    assert seen["headers"]["content-type"] == "application/protobuf"
    assert len(recorded) == 1


@pytest.mark.parametrize(
    ("port", "path"),
    [
        ("fleet", "/v1/control/list-nodes"),  # the Control API is not public
        ("fleet", "/v1/runtime/pull-messages"),  # nor is the ServerApp's runtime API
        ("fleet", "/docs"),
        ("fleet", "/"),
        ("fleet", "/v1/fleetish/x"),
        ("fleet", "/v1/fleet/../control/list-nodes"),
        ("fleet", "/v1/fleet/%2e%2e/control/list-nodes"),
        ("control", "/v1/fleet/register-node"),  # each port serves its own API only
    ],
)
def test_a_path_outside_the_ports_prefix_gets_404_and_never_reaches_the_superlink(gateway, recorded, port, path):
    base = gateway.fleet if port == "fleet" else gateway.control
    # A raw target, so the client does not normalise the dot segments away before sending.
    with httpx.Client(verify=_trusting(gateway.ca)) as client:
        request = client.build_request("POST", base, content=b"x")
        request.url = request.url.copy_with(raw_path=path.encode())
        answer = client.send(request)
    assert answer.status_code == 404
    assert recorded == []


def test_a_streamed_answer_is_passed_on_chunk_by_chunk_not_buffered(gateway, upstream):
    app, _ = upstream
    app.release.clear()
    with httpx.stream(
        "POST", f"{gateway.control}/v1/control/stream", content=b"", verify=_trusting(gateway.ca), timeout=10
    ) as answer:
        chunks = answer.iter_raw()
        assert next(chunks) == b"first;"  # arrives while the upstream still holds the rest
        app.release.set()
        assert b"".join(chunks) == b"last"


def test_a_client_leaving_a_stream_closes_it_at_the_superlink(gateway, upstream):
    app, _ = upstream
    app.disconnected.clear()
    with httpx.stream(
        "POST", f"{gateway.control}/v1/control/hang", content=b"", verify=_trusting(gateway.ca), timeout=10
    ) as answer:
        assert next(answer.iter_raw()) == b"first;"
    assert app.disconnected.wait(timeout=5)  # Flower ends a log stream when its client leaves


def test_an_unreachable_superlink_is_a_502(credentials, tmp_path):
    process, running = _start_gateway(f"https://127.0.0.1:{free_port()}", credentials, tmp_path / "gateway.log")
    try:
        answer = httpx.post(f"{running.fleet}/v1/fleet/get-run", content=b"", verify=_trusting(running.ca))
    finally:
        stop_tree(process)
    assert answer.status_code == 502


def test_an_upstream_certificate_from_another_ca_is_refused(credentials, upstream, tmp_path):
    other = generate(tmp_path / "other", ["eu"])
    process, running = _start_gateway(upstream[1], credentials, tmp_path / "gateway.log", upstream_ca=other.ca_cert)
    try:
        answer = httpx.post(f"{running.fleet}/v1/fleet/echo", content=b"", verify=_trusting(credentials.ca_cert))
    finally:
        stop_tree(process)
    assert answer.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in (tmp_path / "gateway.log").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--upstream": "http://127.0.0.1:9091"}, "expected https://HOST:PORT"),
        ({"--route": "9092"}, "expected PORT=PREFIX"),
        ({"--route": "70000=/v1/fleet/"}, "PORT in 1-65535"),
        ({"--route": "9092=/v1/fleet"}, "must start and end with '/'"),
        ({"--ca-certfile": "/nonexistent/ca.crt"}, "--ca-certfile /nonexistent/ca.crt: no such file"),
        ({"--certfile": "/nonexistent/tls.crt"}, "--certfile /nonexistent/tls.crt: no such file"),
    ],
)
def test_a_bad_flag_is_refused_with_a_message_naming_it(credentials, capsys, change, message):
    flags = {
        "--upstream": "https://127.0.0.1:9091",
        "--route": f"{free_port()}=/v1/fleet/",
        "--certfile": str(credentials.superlink_cert),
        "--keyfile": str(credentials.superlink_key),
        "--ca-certfile": str(credentials.ca_cert),
        **change,
    }
    assert main([item for pair in flags.items() for item in pair]) == 2
    assert message in capsys.readouterr().err


def test_a_port_routed_twice_or_not_at_all_is_refused(credentials, capsys):
    files = ["--certfile", str(credentials.superlink_cert), "--keyfile", str(credentials.superlink_key),
             "--ca-certfile", str(credentials.ca_cert), "--upstream", "https://127.0.0.1:9091"]  # fmt: skip
    assert main(files) == 2
    assert "give at least one --route" in capsys.readouterr().err
    port = free_port()
    assert main([*files, "--route", f"{port}=/v1/fleet/", "--route", f"{port}=/v1/control/"]) == 2
    assert "each port takes one prefix" in capsys.readouterr().err


def test_a_key_that_does_not_match_the_certificate_is_refused(credentials, tmp_path, capsys):
    other = generate(tmp_path / "other", ["eu"])
    flags = ["--upstream", "https://127.0.0.1:9091", "--route", f"{free_port()}=/v1/fleet/",
             "--certfile", str(credentials.superlink_cert), "--keyfile", str(other.superlink_key),
             "--ca-certfile", str(credentials.ca_cert)]  # fmt: skip
    assert main(flags) == 2
    assert "unusable" in capsys.readouterr().err


@pytest.mark.slow
def test_a_supernode_joins_a_real_superlink_through_the_fleet_port_and_only_there(tmp_path):
    """Registration and listing through the control port, the node's traffic through the
    fleet port, and neither port answers for the other's API."""
    names = ["eu"]
    creds = generate(tmp_path / "certs", names)
    prepare_data("digits", names, tmp_path / "data", seed=0, alpha=0.5)
    # Started with no node: LocalFederation then only brings up the SuperLink (TLS, node auth).
    with LocalFederation(tmp_path, [], ready_timeout=60) as federation:
        process, gateway = _start_gateway(f"https://{federation.address}", creds, tmp_path / "logs" / "gateway.log")
        try:
            # The `flwr` CLI and the SuperNode now see the SuperLink only through the gateway.
            (Path(federation.env["FLWR_HOME"]) / "config.toml").write_text(
                f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
                f'address = "{gateway.control.removeprefix("https://")}"\nroot-certificates = "{creds.ca_cert}"\n'
            )
            federation.address = gateway.fleet.removeprefix("https://")
            federation.credentials = creds  # started with no node, it knew no node keys
            federation.nodes["eu"] = Node("eu", tmp_path / "data" / "eu")
            federation.node_ids["eu"] = int(
                federation._flwr("supernode", "register", str(creds.node_public_keys["eu"]), CONNECTION)["node-id"]
            )
            federation.start_node("eu")  # waits until `flwr supernode list` shows it online
            assert federation.online_regions() == {"eu"}

            probe = uuid.uuid4().hex  # marks the refused requests in the SuperLink's access log
            refused = [
                httpx.post(
                    f"{gateway.fleet}/v1/control/list-nodes?probe={probe}", content=b"", verify=_trusting(creds.ca_cert)
                ),
                httpx.post(
                    f"{gateway.control}/v1/fleet/get-run?probe={probe}", content=b"", verify=_trusting(creds.ca_cert)
                ),
            ]
            assert [answer.status_code for answer in refused] == [404, 404]
        finally:
            stop_tree(process)
        superlink_log = (federation.logs / "superlink.log").read_text()
    gateway_log = (federation.logs / "gateway.log").read_text()
    for path in ("/v1/control/register-node", "/v1/fleet/activate-node", "/v1/control/list-nodes"):
        assert f'"POST {path} HTTP/1.1" 200' in gateway_log  # the node and the CLI came this way
    assert "/v1/fleet/activate-node" in superlink_log  # its access log records paths...
    assert probe not in superlink_log  # ...and never saw the refused ones
