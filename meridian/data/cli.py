"""`python -m meridian data push|ls STACK --region R`: a region's data into its own bucket, and back out.

Runs in the workloads' environment (.venv-workloads), which has fsspec, s3fs and gcsfs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meridian.data.errors import DataRefused
from meridian.data.target import resolve_target


def _size(n: int) -> str:
    """Bytes for people: 48.8 KiB, 1.2 GiB."""
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def push_command(args: argparse.Namespace) -> int:
    from meridian.data.push import PushedObject, push

    target = resolve_target(args.stack, args.region, args.outputs)

    def report(done: PushedObject) -> None:
        print(f"{target.url}/{done.key}  {_size(done.size)}  sha256:{done.sha256}")

    pushed = push(target, args.path, on_pushed=report)
    total = sum(p.size for p in pushed)
    print(f"{target.region}: {len(pushed)} object(s), {_size(total)} pushed to {target.url} (zone {target.residency})")
    return 0


def ls_command(args: argparse.Namespace) -> int:
    from meridian.data.listing import list_objects
    from meridian.data.residency import zone_of

    target = resolve_target(args.stack, args.region, args.outputs)
    listing = list_objects(target, verify=args.verify)
    objects = listing.objects
    damaged = 0
    for stored in objects:
        note = "" if stored.recorded else "  (no recorded digest: hashed now)"
        if stored.intact is False:
            note = "  DAMAGED: the bytes no longer match the recorded digest"
            damaged += 1
        print(f"{stored.key}  {stored.size}  sha256:{stored.sha256}{note}")
    zone = zone_of(target.cloud, listing.location)
    print(
        f"{target.url} ({listing.location}, zone {zone or 'unknown'}): "
        f"{len(objects)} object(s), {_size(sum(o.size for o in objects))}"
    )
    return 1 if damaged else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meridian data", description="A region's data in its own bucket.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary in (
        ("push", "upload a file or a directory to the region's data bucket"),
        ("ls", "list the region's data bucket with sizes and sha256 digests"),
    ):
        command = commands.add_parser(name, help=summary)
        command.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
        command.add_argument("--region", required=True, help="one of the stack's regions")
        command.add_argument(
            "--outputs",
            type=Path,
            help="the stack's outputs (`pulumi stack output --json --stack STACK > FILE`); "
            "default: run that command, when the Pulumi CLI is installed",
        )
        if name == "push":
            command.add_argument(
                "path", type=Path, help="a file, or a directory whose contents land at the bucket's top"
            )
        else:
            command.add_argument("--verify", action="store_true", help="hash every object and compare to its digest")
    args = parser.parse_args(argv)
    try:
        return push_command(args) if args.command == "push" else ls_command(args)
    except DataRefused as err:
        print(f"meridian data {args.command}: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the cloud's own refusal or a lost connection: no object was left half-written
        print(f"meridian data {args.command} {args.stack} --region {args.region}: {err}", file=sys.stderr)
        return 1
