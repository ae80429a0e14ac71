"""Registry commands: keygen, serve (the CDN stand-in), verify (fetch + check one artifact)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workloads.registry.artifact import ArtifactId, ArtifactRejected, Variant
from workloads.registry.serve import RegistryServer
from workloads.registry.signing import generate_keypair
from workloads.registry.store import fetch_verified


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads.registry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="write a new Ed25519 signing key pair")
    keygen.add_argument("--out", type=Path, required=True, help="directory (never commit it)")

    serve = commands.add_parser("serve", help="serve a registry directory over HTTP (ETag, Range)")
    serve.add_argument("--root", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")

    verify = commands.add_parser("verify", help="fetch one artifact and verify it")
    verify.add_argument("--store", required=True, help="fsspec or http(s) URL of the registry")
    verify.add_argument("--trusted-key", type=Path, required=True)
    verify.add_argument("--model", required=True)
    verify.add_argument("--version", required=True)
    verify.add_argument("--region", required=True)
    verify.add_argument("--variant", required=True, choices=[v.value for v in Variant])
    verify.add_argument("--dest", type=Path, required=True)

    args = parser.parse_args(argv)
    if args.command == "keygen":
        private_path, public_path = generate_keypair(args.out)
        print(f"private key: {private_path} (keep secret)\npublic key:  {public_path}")
    elif args.command == "serve":
        server = RegistryServer(args.root, args.host, args.port)
        print(f"serving {args.root} at {server.url}", flush=True)
        server.serve_forever()
    else:
        artifact = ArtifactId(args.model, args.version, args.region, args.variant)
        try:
            verified = fetch_verified(args.store, artifact, args.trusted_key, args.dest)
        except ArtifactRejected as rejection:
            print(rejection, file=sys.stderr)
            return 1
        print(
            json.dumps(
                {
                    "verified": str(artifact),
                    "directory": str(verified.directory),
                    "bytes_downloaded": verified.bytes_downloaded,
                    "metrics": verified.manifest.metrics,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
