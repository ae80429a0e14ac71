"""The one issuer of X.509 certificates made on this machine: a small certificate authority, server
certificates for the names and addresses callers dial, client certificates for mutual TLS.

The clusters get theirs from Pulumi (pulumi-tls, the stack's CA); everything that runs here makes
its own with this module: the federation's CA and SuperLink certificate (workloads/trainer/certs.py,
P-384), the local stack's front door (meridian/local/front_door.py, P-256) and the TLS tests. One
issuer keeps one answer to what a certificate states: a CA signs certificates and nothing else
(path length 0); a leaf is a server's (serverAuth, valid for its names) or a client's (clientAuth)
and never both, so a server certificate cannot stand in for an edge at a mutual-TLS listener.

The caller picks the curve (the CA's; its leaves use the same) and the validity. Keys are PKCS#8
PEM files created 0600, never readable by others, not even between a write and a chmod; every file
is written beside its target and renamed over it, so a reader sees the old file or the new one.
`keep_or_create` / `keep_or_issue` reuse what is on disk while it still states what was asked for
and stays valid past `renew_before`; otherwise they make it again.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW = dt.timedelta(minutes=5)  # certificates start this much in the past: peers' clocks differ
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


class Purpose(enum.Enum):
    """What a leaf certificate authenticates (its one extended key usage)."""

    SERVER = ExtendedKeyUsageOID.SERVER_AUTH
    CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True)
class Issued:
    """A certificate's PEM file and its private key's (0600)."""

    cert: Path
    key: Path

    @classmethod
    def named(cls, directory: Path, name: str) -> Issued:
        """`<directory>/<name>.crt` and `<name>.key`."""
        return cls(directory / f"{name}.crt", directory / f"{name}.key")


@dataclass(frozen=True)
class Leaf:
    """What a leaf certificate states: its subject's common name, its purpose and, for a server,
    the DNS names and IP addresses it answers on (as clients dial them)."""

    common_name: str
    purpose: Purpose
    names: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.common_name:
            raise ValueError("a certificate needs a common name")
        if self.purpose is Purpose.SERVER and not self.names:
            raise ValueError(f"server certificate {self.common_name!r}: give the names clients dial it by")
        for name in self.names:
            if not name:
                raise ValueError(f"certificate {self.common_name!r}: empty name in {list(self.names)}")

    @property
    def alternative_names(self) -> list[x509.GeneralName]:
        return [_general_name(name) for name in dict.fromkeys(self.names)]

    def stated_by(self, cert: x509.Certificate) -> bool:
        """Whether `cert` states exactly this: subject, names (in any order) and purpose."""
        names = _extension(cert, x509.SubjectAlternativeName)
        usages = _extension(cert, x509.ExtendedKeyUsage)
        return (
            cert.subject == _subject(self.common_name)
            and set(names or []) == set(self.alternative_names)
            and list(usages or []) == [self.purpose.value]
        )


class Authority:
    """A certificate authority whose certificate and key sit in `files`."""

    def __init__(self, files: Issued, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.files = files
        self.cert = cert
        self._key = key

    @classmethod
    def create(cls, files: Issued, common_name: str, curve: ec.EllipticCurve, validity: dt.timedelta) -> Authority:
        """A new CA (a new key), written to `files`."""
        key = ec.generate_private_key(curve)
        subject = _subject(common_name)
        cert = _sign(
            _builder(subject, subject, key.public_key(), validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True),
            key,
        )
        _write_pair(files, cert, key)
        return cls(files, cert, key)

    @classmethod
    def load(cls, files: Issued) -> Authority:
        """The CA in `files` as it is (OSError or ValueError when it is not a CA's pair)."""
        cert, key = _load_pair(files)
        if not _is_ca(cert) or not _signed_by(cert, cert):
            raise ValueError(f"{files.cert} is not a self-signed CA certificate")
        return cls(files, cert, key)

    @classmethod
    def keep_or_create(
        cls,
        files: Issued,
        common_name: str,
        curve: ec.EllipticCurve,
        validity: dt.timedelta,
        renew_before: dt.timedelta,
    ) -> Authority:
        """The CA in `files` if it is this one (name, curve) and valid past `renew_before`;
        otherwise a new one (whose certificates then all fail `keep_or_issue`'s check)."""
        try:
            ca = cls.load(files)
        except (OSError, ValueError):
            return cls.create(files, common_name, curve, validity)
        if ca.cert.subject == _subject(common_name) and _current(ca.cert, ca._key, curve, renew_before):
            return ca
        return cls.create(files, common_name, curve, validity)

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._key.curve

    def issue(self, leaf: Leaf, files: Issued, validity: dt.timedelta) -> Issued:
        """A new key and a certificate for `leaf`, signed by this CA, written to `files`."""
        key = ec.generate_private_key(self.curve)
        builder = (
            _builder(_subject(leaf.common_name), self.cert.subject, key.public_key(), validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([leaf.purpose.value]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if leaf.names:
            builder = builder.add_extension(x509.SubjectAlternativeName(leaf.alternative_names), critical=False)
        _write_pair(files, _sign(builder, self._key), key)
        return files

    def keep_or_issue(self, leaf: Leaf, files: Issued, validity: dt.timedelta, renew_before: dt.timedelta) -> Issued:
        """`files` as they are if they hold a certificate of this CA stating `leaf`, valid past
        `renew_before`, and its key; otherwise `issue`."""
        try:
            cert, key = _load_pair(files)
        except (OSError, ValueError):
            return self.issue(leaf, files, validity)
        if _signed_by(cert, self.cert) and leaf.stated_by(cert) and _current(cert, key, self.curve, renew_before):
            return files
        return self.issue(leaf, files, validity)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, readable by its owner only from the first byte on."""
    _replace(path, data, PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    _replace(path, data, PUBLIC_MODE)


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _replace(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        staged.replace(path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def _write_pair(files: Issued, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    # The key first: a reader that finds the new certificate finds its key too.
    write_private(files.key, private_pem(key))
    write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))


def _load_pair(files: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.key} is not an elliptic-curve key")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise ValueError(f"{files.key} is not the key of {files.cert}")
    return cert, key


def _current(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, curve: ec.EllipticCurve, renew_before: dt.timedelta
) -> bool:
    """Whether `cert` (with `key`) uses `curve` and is valid from now until `renew_before` from now."""
    now = dt.datetime.now(dt.UTC)
    return key.curve.name == curve.name and cert.not_valid_before_utc <= now < cert.not_valid_after_utc - renew_before


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _extension(cert: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _public_der(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, validity: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Signed with the hash as strong as the signing key's curve (RFC 5480: SHA-256 for P-256,
    SHA-384 for P-384, SHA-512 above)."""
    size = key.curve.key_size
    digest = hashes.SHA256() if size <= 256 else hashes.SHA384() if size <= 384 else hashes.SHA512()
    return builder.sign(key, digest)


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """A CA signs certificates (and revocation lists) only; a leaf signs its TLS handshakes only."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
