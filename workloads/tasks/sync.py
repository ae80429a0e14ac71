"""`python -m workloads.tasks sync-data --source URL --dest DIR`: a region's data, from its
bucket into its SuperNode's data directory (the init container of a SuperNode pod; see
workloads/contract.py, DATA_SYNC_COMMAND).

URL is `s3://bucket[/prefix]`, `gs://bucket[/prefix]` or `file:///dir`, holding what
`prepare-data` wrote for the region (shard.npz at its top, plus any other files). Buckets are
read with the process's own cloud identity (the pod's IRSA role or Workload Identity: the
default credential chain of s3fs or gcsfs), which can read that region's bucket only.

Everything lands in a staging directory inside DIR first and moves into place only once the
shard loads, so a failed sync leaves DIR as it was. Staging inside DIR, not beside it, keeps
the final moves renames on one filesystem: DIR is a volume mount point under a read-only root.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec

from workloads.tasks.base import Shard

# The fsspec implementation each scheme needs; file:// is built in.
PACKAGES = {"s3": "s3fs", "gs": "gcsfs", "file": "fsspec"}


class SyncError(RuntimeError):
    """The data could not be synced; the message names the source and what went wrong."""


def _list(source: str, storage_options: Mapping[str, Any] | None) -> tuple[fsspec.AbstractFileSystem, str, list[str]]:
    scheme = source.split("://", 1)[0] if "://" in source else ""
    if scheme not in PACKAGES:
        raise SyncError(f"--source {source!r}: expected s3://bucket[/prefix], gs://bucket[/prefix] or file:///dir")
    try:
        fs, root = fsspec.core.url_to_fs(source, **(storage_options or {}))
    except ImportError as err:
        raise SyncError(
            f"{source}: reading {scheme}:// needs the {PACKAGES[scheme]} package, which is not installed"
        ) from err
    root = root.rstrip("/")
    try:
        files = fs.find(root)
    except FileNotFoundError:
        files = []
    except PermissionError as err:
        raise SyncError(f"{source}: access denied to this process's identity ({err})") from err
    if not files:
        raise SyncError(f"{source}: nothing there (no such bucket, prefix or directory, or it is empty)")
    return fs, root, files


def _relative(path: str, root: str, source: str) -> PurePosixPath:
    relative = PurePosixPath(posixpath.relpath(path, root) if path != root else posixpath.basename(path))
    if relative.is_absolute() or ".." in relative.parts:
        raise SyncError(f"{source}: object {path!r} would land outside the destination")
    return relative


def sync_data(source: str, dest: Path, storage_options: Mapping[str, Any] | None = None) -> list[PurePosixPath]:
    """Copy everything under `source` into `dest` (files there with the same names are
    replaced, others kept) once it holds a loadable shard; return the copied paths."""
    fs, root, files = _list(source, storage_options)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sync-", dir=dest))
    try:
        copied = [_relative(path, root, source) for path in files]
        try:
            for path, relative in zip(files, copied, strict=True):
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(path, str(staging / relative))
        except OSError as err:
            raise SyncError(f"{source}: download failed ({err})") from err
        try:
            Shard.load(staging)
        except FileNotFoundError as err:
            listed = ", ".join(str(p) for p in copied[:5])
            raise SyncError(f"{source}: no shard.npz at its top (it holds {listed})") from err
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
            raise SyncError(f"{source}: shard.npz is not a loadable shard ({err})") from err
        for relative in copied:
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, dest / relative)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    shutil.rmtree(staging)
    return copied


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sync-data", help="copy a region's data from its bucket into a directory")
    parser.add_argument("--source", required=True, help="s3://bucket[/prefix], gs://bucket[/prefix] or file:///dir")
    parser.add_argument("--dest", required=True, type=Path, help="the SuperNode's data directory")


def run(args: argparse.Namespace) -> int:
    try:
        copied = sync_data(args.source, args.dest)
    except SyncError as err:
        print(f"sync-data: {err}", file=sys.stderr)
        return 1
    print(f"{args.dest}: {len(copied)} files from {args.source}, shard verified")
    return 0
