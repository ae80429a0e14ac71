"""Uploading a region's data so that each object appears only whole, carrying its sha256.

A file opened with fsspec's defaults commits on close, and `with fs.open(...)` closes on an
exception too: an interrupted copy would publish the bytes sent so far under the final name.
So every object is written inside an fsspec transaction: S3 gets a multipart upload that is
completed only at commit (else aborted), GCS a resumable upload finalized only at commit (else
cancelled). Commit happens only after the bytes sent hash to the digest the object was created
with. Cancelling is best effort; an upload left unfinished (cancel failed, or the process was
killed) is never listed either: S3 keeps its parts until an AbortIncompleteMultipartUpload
lifecycle rule removes them, GCS drops it after a week.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from meridian.data.bucket import Bucket
from meridian.data.errors import DataRefused
from meridian.data.residency import check_residency
from meridian.data.target import DataTarget

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

READ_SIZE = 1 << 20
# S3 parts must be >= 5 MiB; a larger block means fewer requests and more memory per upload.
DEFAULT_BLOCK_SIZE = 16 << 20


@dataclass(frozen=True)
class PushedObject:
    key: str  # relative to the region's data URL
    size: int
    sha256: str


def local_files(path: Path) -> list[tuple[Path, str]]:
    """(file, key) pairs: a file lands under its own name, a directory's contents at the URL's top
    (where `workloads.tasks sync-data` expects shard.npz)."""
    if path.is_file():
        return [(path, path.name)]
    if not path.is_dir():
        raise DataRefused(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise DataRefused(f"{path}: the directory holds no files")
    return [(p, PurePosixPath(*p.relative_to(path).parts).as_posix()) for p in files]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(READ_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        yield from iter(lambda: source.read(READ_SIZE), b"")


def upload_whole(
    bucket: Bucket,
    source: Path,
    key: str,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
) -> PushedObject:
    """Upload one file to `bucket`/`key`: visible only once complete and matching its digest.

    `on_chunk(bytes_sent_so_far)` runs after each chunk is handed to the upload (progress; tests
    interrupt the push there).
    """
    expected = file_sha256(source)
    remote = f"{bucket.root}/{key}"
    fs = bucket.fs
    if source.stat().st_size == 0:
        # One request, so whole by nature; and s3fs would commit an empty streamed file without its metadata.
        fs.pipe_file(remote, b"", **bucket.write_options(expected))
        _check_stored(bucket, remote, 0, expected)
        return PushedObject(key=key, size=0, sha256=expected)
    sent = hashlib.sha256()
    size = 0
    # Inside a transaction the file is not committed on close: only end_transaction commits it.
    fs.start_transaction()
    try:
        # fsspec annotates open() for text modes too; "wb" gives a binary file.
        opened = fs.open(remote, "wb", block_size=block_size, **bucket.write_options(expected))
        with cast("BinaryIO", opened) as out:
            for chunk in _chunks(source):
                out.write(chunk)
                sent.update(chunk)
                size += len(chunk)
                if on_chunk is not None:
                    on_chunk(size)
        if sent.hexdigest() != expected:
            raise DataRefused(f"{source} changed while it was pushed: {bucket.url(remote)} not written")
        fs.end_transaction()  # S3 CompleteMultipartUpload / the GCS final chunk: all at once, or not at all
    except BaseException:
        _discard(fs, remote)
        raise
    _check_stored(bucket, remote, size, expected)
    return PushedObject(key=key, size=size, sha256=expected)


def _discard(fs: AbstractFileSystem, remote: str) -> None:
    """Cancel the unfinished upload, best effort: it is invisible either way, and a failure to
    cancel (often the same lost connection) must not hide why the push stopped."""
    transaction = fs.transaction
    for unfinished in transaction.files:
        try:
            unfinished.discard()
        except Exception as err:
            # S3 keeps the parts of an unaborted multipart upload until a lifecycle rule removes
            # them; GCS drops an unfinished resumable upload after a week.
            print(f"warning: could not cancel the unfinished upload of {remote}: {err}", file=sys.stderr)
    transaction.files.clear()
    transaction.complete(commit=False)


def _check_stored(bucket: Bucket, remote: str, size: int, sha256: str) -> None:
    """The object the bucket now lists has the size and digest just sent."""
    bucket.fs.invalidate_cache(remote)
    info = bucket.fs.info(remote)
    stored = bucket.stored_digest(remote, info)
    if info["size"] != size or stored != sha256:
        raise DataRefused(
            f"{bucket.url(remote)}: the bucket holds {info['size']} bytes with sha256 {stored}, "
            f"not the {size} bytes with sha256 {sha256} sent"
        )


def push(
    target: DataTarget,
    path: Path,
    *,
    storage_options: Mapping[str, Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
    on_pushed: Callable[[PushedObject], None] | None = None,
) -> list[PushedObject]:
    """Push a file or a directory to the target region's bucket, after the residency check."""
    files = local_files(path)
    bucket = Bucket.open(target.url, storage_options)
    check_residency(target, bucket)
    pushed: list[PushedObject] = []
    for source, key in files:
        done = upload_whole(bucket, source, key, block_size=block_size, on_chunk=on_chunk)
        pushed.append(done)
        if on_pushed is not None:
            on_pushed(done)
    return pushed
