"""workloads/pki.py, the one issuer of certificates made on this machine: a CA whose server
certificates real TLS accepts for exactly their names and whose client certificates pass mutual
TLS, each for its one purpose; keys owner-only; what is on disk kept while it is still what was
asked for and valid, and made again when it is not."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from workloads.pki import Authority, Issued, Leaf, Purpose

DAY = dt.timedelta(days=1)
SERVER = Leaf("region", Purpose.SERVER, ["localhost", "127.0.0.1", "region.meridian.svc"])
EDGE = Leaf("edge-nyc", Purpose.CLIENT)


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority.create(Issued.named(tmp_path, "ca"), "test CA", ec.SECP256R1(), DAY)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, host: str = "127.0.0.1") -> str:
    """A TLS handshake on loopback; the client certificate's common name the server saw ("-" for
    none). Raises the client's ssl.SSLError or OSError when either side refuses."""
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            raw, _ = listener.accept()
            with raw:
                try:
                    with server.wrap_socket(raw, server_side=True) as tls:
                        peer = tls.getpeercert() or {}
                        names = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
                        seen.append(names[0] if names else "-")
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname=host) as tls,
        ):
            reply = tls.recv(2)  # TLS 1.3: a refused client certificate surfaces here
        thread.join(10)
    if reply != b"ok":
        raise ConnectionError("the server closed the connection")
    return seen[0]


def server_context(issued: Issued, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: Path, identity: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


def test_real_tls_accepts_a_server_certificate_for_each_of_its_names_and_no_other(
    ca: Authority, tmp_path: Path
) -> None:
    server = server_context(ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY))
    for host in ("localhost", "127.0.0.1", "region.meridian.svc"):
        assert handshake(server, client_context(ca.files.cert), host) == "-"
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(server, client_context(ca.files.cert), "other.meridian.svc")
    stranger = Authority.create(Issued.named(tmp_path / "other", "ca"), "test CA", ec.SECP256R1(), DAY)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client_context(stranger.files.cert))


def test_mutual_tls_takes_a_client_certificate_of_the_ca_and_refuses_a_server_certificate(
    ca: Authority, tmp_path: Path
) -> None:
    region = server_context(ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY), client_ca=ca.files.cert)
    edge = ca.issue(EDGE, Issued.named(tmp_path, "edge"), DAY)
    assert handshake(region, client_context(ca.files.cert, edge)) == "edge-nyc"
    posing = ca.issue(Leaf("edge-nyc", Purpose.SERVER, ["localhost"]), Issued.named(tmp_path, "posing"), DAY)
    for refused in (posing, None):
        with pytest.raises((ssl.SSLError, OSError)):
            handshake(region, client_context(ca.files.cert, refused))


def test_the_x509_verifier_chains_a_server_certificate_to_the_ca_for_serving_only(
    ca: Authority, tmp_path: Path
) -> None:
    """RFC 5280 and the CA/Browser Forum profile, as cryptography's verifier checks them (its
    client verifier wants names in a client certificate too: mutual TLS above proves those)."""
    server = load(ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY).cert)
    client = load(ca.issue(EDGE, Issued.named(tmp_path, "edge"), DAY).cert)
    policy = PolicyBuilder().store(Store([load(ca.files.cert)]))
    as_server = policy.build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    assert as_server.verify(server, []) == [server, load(ca.files.cert)]
    with pytest.raises(VerificationError):
        as_server.verify(client, [])
    with pytest.raises(VerificationError, match="required EKU not found"):
        policy.build_client_verifier().verify(server, [])
    in_two_days = dt.datetime.now(dt.UTC) + 2 * DAY
    with pytest.raises(VerificationError):  # past its validity
        policy.time(in_two_days).build_server_verifier(x509.DNSName("localhost")).verify(server, [])


def test_a_ca_signs_certificates_only_and_a_leaf_authenticates_for_its_one_purpose(
    ca: Authority, tmp_path: Path
) -> None:
    root, server = load(ca.files.cert), load(ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY).cert)
    client = load(ca.issue(EDGE, Issued.named(tmp_path, "edge"), DAY).cert)
    constraints = extension(root, x509.BasicConstraints)
    assert constraints.critical and constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = extension(root, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    for leaf, purpose in ((server, ExtendedKeyUsageOID.SERVER_AUTH), (client, ExtendedKeyUsageOID.CLIENT_AUTH)):
        assert extension(leaf, x509.BasicConstraints).value.ca is False
        usage = extension(leaf, x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        assert list(extension(leaf, x509.ExtendedKeyUsage).value) == [purpose]
        assert leaf.issuer == root.subject
    names = extension(server, x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "region.meridian.svc"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(x509.ExtensionNotFound):  # a client is known by its common name
        extension(client, x509.SubjectAlternativeName)


def test_certificates_are_valid_from_a_few_minutes_ago_for_the_validity_asked(ca: Authority, tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    leaf = load(ca.issue(EDGE, Issued.named(tmp_path, "edge"), dt.timedelta(days=90)).cert)
    after = dt.datetime.now(dt.UTC)
    # tolerates peers whose clocks lag a little, and never reaches the future
    assert before - dt.timedelta(minutes=6) <= leaf.not_valid_before_utc <= after - dt.timedelta(minutes=4)
    assert before + dt.timedelta(days=90) - dt.timedelta(seconds=1) <= leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc <= after + dt.timedelta(days=90)


@pytest.mark.parametrize(("curve", "digest"), [(ec.SECP256R1(), hashes.SHA256), (ec.SECP384R1(), hashes.SHA384)])
def test_the_callers_curve_serves_the_ca_and_its_leaves_signed_with_the_matching_hash(
    curve: ec.EllipticCurve, digest: type[hashes.HashAlgorithm], tmp_path: Path
) -> None:
    ca = Authority.create(Issued.named(tmp_path, "ca"), "test CA", curve, DAY)
    issued = ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY)
    key = serialization.load_pem_private_key(issued.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == curve.name
    for cert in (load(ca.files.cert), load(issued.cert)):
        assert isinstance(cert.signature_hash_algorithm, digest)


def test_keys_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # nothing but the mode each file is created with protects it
    try:
        ca = Authority.create(Issued(tmp_path / "ca.crt", tmp_path / "secret" / "ca.key"), "CA", ec.SECP256R1(), DAY)
        leaf = ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY)
    finally:
        os.umask(previous)
    for key in (ca.files.key, leaf.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for cert in (ca.files.cert, leaf.cert):
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644, cert
    # written beside their targets and renamed over them: nothing half-written stays behind
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "ca.crt",
        "ca.key",
        "region.crt",
        "region.key",
    ]


def test_a_valid_certificate_stating_what_is_asked_is_kept(ca: Authority, tmp_path: Path) -> None:
    files = ca.issue(SERVER, Issued.named(tmp_path, "region"), DAY)
    before = files.cert.read_bytes(), files.key.read_bytes()
    reordered = Leaf(SERVER.common_name, SERVER.purpose, list(reversed(SERVER.names)))
    assert ca.keep_or_issue(reordered, files, DAY, renew_before=dt.timedelta(hours=1)) == files
    assert (files.cert.read_bytes(), files.key.read_bytes()) == before


@pytest.mark.parametrize(
    "change",
    [
        "another name",
        "another purpose",
        "another common name",
        "expiring within renew_before",
        "expired",
        "another CA",
        "not a certificate",
        "another key",
        "no key",
    ],
)
def test_a_certificate_is_issued_again_when_it_no_longer_states_what_is_asked_or_expires(
    ca: Authority, tmp_path: Path, change: str
) -> None:
    files = Issued.named(tmp_path, "region")
    leaf, renew_before = SERVER, dt.timedelta(hours=1)
    ca.issue(SERVER, files, DAY)
    if change == "another name":
        leaf = Leaf(SERVER.common_name, SERVER.purpose, [*SERVER.names, "::1"])
    elif change == "another purpose":
        leaf = Leaf(SERVER.common_name, Purpose.CLIENT, SERVER.names)
    elif change == "another common name":
        leaf = Leaf("region-2", SERVER.purpose, SERVER.names)
    elif change == "expiring within renew_before":
        renew_before = 2 * DAY
    elif change == "expired":
        ca.issue(SERVER, files, dt.timedelta(minutes=-1))  # ended a minute ago
    elif change == "another CA":
        Authority.create(Issued.named(tmp_path / "other", "ca"), "test CA", ec.SECP256R1(), DAY).issue(
            SERVER, files, DAY
        )
    elif change == "not a certificate":
        files.cert.write_text("not a certificate")
    elif change == "another key":
        ca.issue(SERVER, Issued(tmp_path / "other.crt", files.key), DAY)
    elif change == "no key":
        files.key.unlink()
    stale = files.cert.read_bytes()

    assert ca.keep_or_issue(leaf, files, DAY, renew_before) == files
    cert = load(files.cert)
    assert files.cert.read_bytes() != stale
    assert leaf.stated_by(cert) and cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + DAY - dt.timedelta(minutes=1)
    cert.verify_directly_issued_by(load(ca.files.cert))
    key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    assert key.public_key() == cert.public_key()


def test_a_ca_is_kept_while_valid_and_made_again_with_another_name_curve_or_near_its_end(tmp_path: Path) -> None:
    files = Issued.named(tmp_path, "ca")
    first = Authority.keep_or_create(files, "stack CA", ec.SECP256R1(), DAY, renew_before=dt.timedelta(hours=1))
    leaf = first.issue(EDGE, Issued.named(tmp_path, "edge"), DAY)
    kept = Authority.keep_or_create(files, "stack CA", ec.SECP256R1(), DAY, renew_before=dt.timedelta(hours=1))
    assert kept.cert == first.cert and kept.keep_or_issue(EDGE, leaf, DAY, dt.timedelta(hours=1)) == leaf
    for name, curve, renew_before in (
        ("another CA", ec.SECP256R1(), dt.timedelta(hours=1)),
        ("another CA", ec.SECP384R1(), dt.timedelta(hours=1)),
        ("another CA", ec.SECP384R1(), 2 * DAY),
    ):
        before = files.cert.read_bytes()
        again = Authority.keep_or_create(files, name, curve, DAY, renew_before)
        assert files.cert.read_bytes() != before and again.curve.name == curve.name
    stale = leaf.cert.read_bytes()
    again.keep_or_issue(EDGE, leaf, DAY, dt.timedelta(hours=1))  # a new CA: its leaves are issued again
    assert leaf.cert.read_bytes() != stale
    load(leaf.cert).verify_directly_issued_by(again.cert)


def test_a_ca_is_loaded_back_from_its_files_and_a_leaf_is_no_ca(ca: Authority, tmp_path: Path) -> None:
    assert Authority.load(ca.files).cert == ca.cert
    leaf = ca.issue(EDGE, Issued.named(tmp_path, "edge"), DAY)
    with pytest.raises(ValueError, match="not a self-signed CA"):
        Authority.load(leaf)
    with pytest.raises(ValueError, match="is not the key of"):
        Authority.load(Issued(ca.files.cert, leaf.key))


def test_a_leaf_names_its_subject_and_a_server_the_names_it_is_dialed_by() -> None:
    with pytest.raises(ValueError, match="common name"):
        Leaf("", Purpose.CLIENT)
    with pytest.raises(ValueError, match="'region': give the names"):
        Leaf("region", Purpose.SERVER)
    with pytest.raises(ValueError, match="empty name"):
        Leaf("region", Purpose.SERVER, ["localhost", ""])
