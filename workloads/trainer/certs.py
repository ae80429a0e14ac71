"""Local TLS material and SuperNode keys for a federation.

`python -m workloads.trainer.certs --out DIR --nodes 3 [--node-names eu,us,apac]
[--name superlink.meridian.svc ...] [--force]` writes

    DIR/ca.crt, DIR/ca.key              the local certificate authority (ECDSA P-384)
    DIR/superlink.crt, DIR/superlink.key  the SuperLink's server certificate, signed by the CA,
                                          valid for 127.0.0.1, ::1, localhost and every --name
    DIR/nodes/<node>.key, <node>.pub    one ECDSA P-384 key pair per SuperNode, OpenSSH format
                                          (what `flwr supernode register` and
                                          `flower-supernode --auth-supernode-private-key` read)

The CA and the certificate come from workloads/pki.py, as every certificate made on this machine
does. Private keys are written 0600. Generated material belongs under out/ (git-ignored): it is
never committed; production clusters get theirs from their secret store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workloads import pki

CURVE = ec.SECP384R1()
VALIDITY = dt.timedelta(days=365)
LOOPBACK = ("localhost", "127.0.0.1", "::1")


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

    @property
    def authority(self) -> pki.Issued:
        """The CA's certificate and its key (beside it)."""
        return pki.Issued(self.ca_cert, self.ca_cert.with_suffix(".key"))


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

    ca = pki.Authority.create(paths.authority, "Meridian local federation CA", CURVE, VALIDITY)
    superlink = pki.Leaf("superlink", pki.Purpose.SERVER, [*LOOPBACK, *server_names])
    ca.issue(superlink, pki.Issued(paths.superlink_cert, paths.superlink_key), VALIDITY)
    for node in node_names:
        key = ec.generate_private_key(CURVE)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        pki.write_private(paths.node_private_keys[node], private)
        pki.write_public(paths.node_public_keys[node], public + f" meridian-{node}\n".encode())
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
