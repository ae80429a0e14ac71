"""`make up` makes the local stack's keys and certificates once per out dir: the users' API key
readable by its owner only, the servers' hashes of it, certificates that real TLS accepts
(HTTPS for every server and edge, mutual TLS from each edge to its region), and it keeps them
while they are valid."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from meridian.local.front_door import FrontDoor
from workloads import contract

SERVERS = ["server-local-us", "edge-nyc"]
EDGES = ["edge-nyc"]


@pytest.fixture
def door(tmp_path: Path) -> FrontDoor:
    made = FrontDoor(tmp_path / "local")
    made.ensure("local", SERVERS, EDGES)
    return made


@contextmanager
def tls_listener(context: ssl.SSLContext) -> Iterator[tuple[int, list[str]]]:
    """A loopback TLS server that completes one handshake per connection and records the
    client certificate's subject (or the handshake's failure)."""
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            while True:
                try:
                    raw, _ = listener.accept()
                except OSError:
                    return
                with raw:
                    try:
                        with context.wrap_socket(raw, server_side=True) as conn:
                            peer = conn.getpeercert(binary_form=True)
                            seen.append(x509.load_der_x509_certificate(peer).subject.rfc4514_string() if peer else "-")
                            conn.sendall(b"ok")
                    except (ssl.SSLError, OSError) as err:
                        seen.append(f"refused: {err}")

        threading.Thread(target=serve, daemon=True).start()
        yield listener.getsockname()[1], seen


def _connect(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        return conn.recv(2)


def test_the_users_api_key_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # nothing but the mode the file is created with protects it
    try:
        door = FrontDoor(tmp_path / "local")
        door.ensure("local", SERVERS, EDGES)
    finally:
        os.umask(previous)
    for secret in (door.api_key, door.ca_key, door.key("server-local-us"), door.admin_token, door.api_keys_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    key_id, secret = door.api_key.read_text().strip().split(".", 1)
    assert key_id == "local" and len(secret) >= 40


def test_the_servers_hashes_match_the_users_key_and_hold_no_secret(door: FrontDoor) -> None:
    key_id, secret = door.api_key.read_text().strip().split(".", 1)
    (record,) = json.loads(door.api_keys_file.read_text())["keys"]
    assert record == contract.api_key_record(key_id, bytes.fromhex(record["salt"]), secret)
    assert secret not in door.api_keys_file.read_text()


def test_every_server_certificate_is_trusted_through_the_stack_ca_for_loopback(door: FrontDoor) -> None:
    for name in SERVERS:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(door.cert(name), door.key(name))
        with tls_listener(server) as (port, _):
            for host in ("127.0.0.1", "localhost"):
                assert _connect(port, door.caller().tls(), host) == b"ok"
            with pytest.raises(ssl.SSLCertVerificationError):  # not a public CA's certificate
                _connect(port, ssl.create_default_context())


def test_an_edge_escalates_with_its_client_certificate_and_a_client_without_one_is_refused(door: FrontDoor) -> None:
    region = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    region.load_cert_chain(door.cert("server-local-us"), door.key("server-local-us"))
    region.load_verify_locations(door.ca_cert)
    region.verify_mode = ssl.CERT_REQUIRED
    with tls_listener(region) as (port, seen):
        edge = ssl.create_default_context(cafile=door.ca_cert)
        client = door.client_name("edge-nyc")
        edge.load_cert_chain(door.cert(client), door.key(client))
        assert _connect(port, edge) == b"ok"
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _connect(port, door.caller().tls())  # TLS 1.3: the refusal arrives with the first read
    assert seen[0] == "CN=edge-nyc"  # the region knows the calling edge by its certificate


def test_a_second_up_reuses_what_is_valid_and_remakes_what_is_not(door: FrontDoor) -> None:
    before = {p.name: p.read_bytes() for p in [door.api_key, door.ca_cert, *door.files.iterdir()]}
    door.ensure("local", SERVERS, EDGES)
    assert {p.name: p.read_bytes() for p in [door.api_key, door.ca_cert, *door.files.iterdir()]} == before

    door.cert("edge-nyc").write_text("not a certificate")
    door.ensure("local", [*SERVERS, "server-local-eu"], EDGES)
    assert door.cert("edge-nyc").read_bytes() != b"not a certificate"
    assert door.cert("server-local-us").read_bytes() == before["server-local-us.crt"]
    assert door.cert("server-local-eu").exists()

    door.ca_key.unlink()  # a new CA: every certificate is issued again, under it
    door.ensure("local", SERVERS, EDGES)
    assert door.ca_cert.read_bytes() != before["ca.crt"]
    assert door.cert("server-local-us").read_bytes() != before["server-local-us.crt"]
    assert door.api_key.read_bytes() == before["api-key"]


def test_the_api_key_follows_the_stacks_key_id(door: FrontDoor) -> None:
    door.ensure("laptop", SERVERS, EDGES)
    key_id, secret = door.api_key.read_text().strip().split(".", 1)
    (record,) = json.loads(door.api_keys_file.read_text())["keys"]
    assert key_id == record["id"] == "laptop"
    assert record["sha256"] == contract.api_key_digest(bytes.fromhex(record["salt"]), secret)
