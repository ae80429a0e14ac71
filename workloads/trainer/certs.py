"""Local TLS material and SuperNode keys for a federation.

`python -m workloads.trainer.certs --out DIR --nodes 3 [--node-names eu,us,apac]
[--name superlink.meridian.svc ...] [--force]` writes

    DIR/ca.crt, DIR/ca.key              the local certificate authority (ECDSA P-384)
    DIR/superlink.crt, DIR/superlink.key  the SuperLink's server certificate, signed by the CA,
                                          valid for 127.0.0.1, ::1, localhost and every --name
    DIR/nodes/<node>.key, <node>.pub    one ECDSA P-384 key pair per SuperNode, OpenSSH format
                                          (what `flwr supernode register` and
                                          `flower-supernode --auth-supernode-private-key` read)

Private keys are written 0600. Generated material belongs under out/ (git-ignored): it is
never committed; production clusters get theirs from their secret store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class FederationCredentials:
    ca_cert: Path
    superlink_cert: Path
    superlink_key: Path
    node_private_keys: dict[str, Path]
    node_public_keys: dict[str, Path]

    @classmethod
    def at(cls, directory: Path, node_names: list[str]) -> FederationCredentials:
        nodes = directory / "nodes"
        return cls(
            ca_cert=directory / "ca.crt",
            superlink_cert=directory / "superlink.crt",
            superlink_key=directory / "superlink.key",
            node_private_keys={n: nodes / f"{n}.key" for n in node_names},
            node_public_keys={n: nodes / f"{n}.pub" for n in node_names},
        )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name | None,
    signing_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + _VALIDITY)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA384())


def generate(
    out: Path, node_names: list[str], server_names: Sequence[str] = (), force: bool = False
) -> FederationCredentials:
    """Create the CA, the SuperLink certificate and one key pair per node under `out`."""
    if not node_names:
        raise ValueError("at least one node is needed")
    if len(set(node_names)) != len(node_names):
        raise ValueError(f"node names must be unique: {node_names}")
    for node in node_names:
        if not node or "/" in node or node.startswith("."):
            raise ValueError(f"node name {node!r} is not a plain file name")
    paths = FederationCredentials.at(out, node_names)
    if paths.ca_cert.exists() and not force:
        raise FileExistsError(
            f"{paths.ca_cert} exists: pass --force to replace the whole set "
            "(running SuperLinks and SuperNodes will then need restarting)"
        )

    ca_key = _new_key()
    ca_cert = _certificate(
        "Meridian local federation CA",
        ca_key.public_key(),
        issuer=None,
        signing_key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        ],
    )
    server_key = _new_key()
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in (*_LOOPBACK_NAMES, *server_names)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _LOOPBACK_IPS]
    server_cert = _certificate(
        "superlink",
        server_key.public_key(),
        issuer=ca_cert.subject,
        signing_key=ca_key,
        extensions=[
            (x509.SubjectAlternativeName(alt_names), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(out / "ca.key", _pem_key(ca_key), private=True)
    _write(paths.superlink_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths.superlink_key, _pem_key(server_key), private=True)
    for node in node_names:
        key = _new_key()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        _write(paths.node_private_keys[node], private, private=True)
        _write(paths.node_public_keys[node], public + f" meridian-{node}\n".encode(), private=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.trainer.certs", description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--nodes", type=int, help="number of SuperNodes (named node-0, node-1...)")
    parser.add_argument("--node-names", help="comma-separated SuperNode names (e.g. the regions)")
    parser.add_argument("--name", action="append", default=[], help="extra DNS name for the SuperLink certificate")
    parser.add_argument("--force", action="store_true", help="replace existing material")
    args = parser.parse_args(argv)
    if args.node_names:
        names = [n.strip() for n in args.node_names.split(",")]
    elif args.nodes and args.nodes > 0:
        names = [f"node-{i}" for i in range(args.nodes)]
    else:
        parser.error("give --nodes N (N >= 1) or --node-names a,b,c")
    try:
        paths = generate(args.out, names, args.name, force=args.force)
    except (ValueError, FileExistsError) as err:
        print(f"certs: {err}", file=sys.stderr)
        return 2
    print(f"CA: {paths.ca_cert}\nSuperLink: {paths.superlink_cert}, {paths.superlink_key}")
    for node, key in paths.node_private_keys.items():
        print(f"SuperNode {node}: {key} (register {paths.node_public_keys[node]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
