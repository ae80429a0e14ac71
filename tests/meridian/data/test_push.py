"""`meridian data` against real S3 and GCS servers on loopback: bytes round-trip with their digests,
a bucket outside its region's zone gets nothing, and an interrupted push leaves nothing visible."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from meridian.data.errors import DataRefused
from meridian.data.listing import list_objects
from meridian.data.push import push
from meridian.data.target import DataTarget, resolve_target
from tests.meridian.data.stores import STACK, Store, unique_bucket, write_outputs

# S3 parts must be >= 5 MiB: a 12 MiB file is sent as three parts, so an interruption after
# 7 MiB happens with a part already stored on the server.
BLOCK = 5 << 20
BIG = 12 << 20
IN_ZONE = {"s3": "eu-central-1", "gs": "europe-west4"}
OUT_OF_ZONE = {"s3": "us-east-1", "gs": "US"}


def _target(store: Store, tmp_path: Path, location: str) -> DataTarget:
    bucket = unique_bucket("data")
    store.make_bucket(bucket, location)
    outputs = write_outputs(tmp_path / "outputs.json", {store.region: f"{store.scheme}://{bucket}"})
    return resolve_target(STACK, store.region, outputs)


def _dataset(root: Path) -> dict[str, bytes]:
    files = {
        "shard.npz": os.urandom(300_000),
        "meta/labels.json": b'{"classes": 10}\n',
        "meta/empty.txt": b"",
    }
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return files


def _visible(store: Store, target: DataTarget) -> list[str]:
    return sorted(store.fs().find(target.url))


def test_a_directory_round_trips_with_sizes_and_digests(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    files = _dataset(tmp_path / "data")

    pushed = push(target, tmp_path / "data", storage_options=store.options)

    expected = {key: (len(data), hashlib.sha256(data).hexdigest()) for key, data in files.items()}
    assert {p.key: (p.size, p.sha256) for p in pushed} == expected
    listing = list_objects(target, verify=True, storage_options=store.options)
    assert listing.location.lower() == IN_ZONE[store.scheme]
    listed = listing.objects
    assert {o.key: (o.size, o.sha256) for o in listed} == expected
    assert all(o.recorded and o.intact for o in listed)
    reader = store.fs()
    for key, data in files.items():
        assert reader.cat_file(f"{target.url}/{key}") == data


def test_a_large_file_goes_up_in_parts_and_reads_back_equal(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    data = os.urandom(BIG)
    (tmp_path / "shard.npz").write_bytes(data)

    [pushed] = push(target, tmp_path / "shard.npz", storage_options=store.options, block_size=BLOCK)

    assert (pushed.key, pushed.size) == ("shard.npz", BIG)
    assert store.fs().cat_file(f"{target.url}/shard.npz") == data


def test_a_bucket_outside_the_regions_zone_gets_nothing(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, OUT_OF_ZONE[store.scheme])
    _dataset(tmp_path / "data")

    with pytest.raises(DataRefused) as refused:
        push(target, tmp_path / "data", storage_options=store.options)

    message = str(refused.value)
    assert f"region {store.region}" in message and "zone eu" in message
    assert f"{store.scheme}://{target.bucket}" in message and OUT_OF_ZONE[store.scheme] in message
    assert "nothing written" in message
    assert _visible(store, target) == []


class Interrupted(BaseException):
    """Stands for Ctrl-C or a dropped connection in the middle of an upload."""


def test_an_interrupted_push_leaves_no_object_visible(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    (tmp_path / "shard.npz").write_bytes(os.urandom(BIG))

    def interrupt(sent: int) -> None:
        if sent >= 7 << 20:  # after the first part reached the server
            raise Interrupted

    with pytest.raises(Interrupted):
        push(target, tmp_path / "shard.npz", storage_options=store.options, block_size=BLOCK, on_chunk=interrupt)

    assert _visible(store, target) == []
    assert list_objects(target, storage_options=store.options).objects == []
    assert store.unfinished_uploads(target.bucket) == []  # cancelled, not left to linger


def test_an_interrupted_push_keeps_the_object_it_would_replace(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    old = os.urandom(1000)
    (tmp_path / "shard.npz").write_bytes(old)
    push(target, tmp_path / "shard.npz", storage_options=store.options)
    (tmp_path / "shard.npz").write_bytes(os.urandom(BIG))

    def interrupt(sent: int) -> None:
        if sent >= 7 << 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        push(target, tmp_path / "shard.npz", storage_options=store.options, block_size=BLOCK, on_chunk=interrupt)

    assert store.fs().cat_file(f"{target.url}/shard.npz") == old


def test_a_file_that_changes_while_pushed_is_not_written(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    source = tmp_path / "shard.npz"
    source.write_bytes(b"a" * (3 << 20))

    def rewrite(sent: int) -> None:
        if sent == 1 << 20:
            source.write_bytes(b"b" * (3 << 20))

    with pytest.raises(DataRefused, match="changed while it was pushed"):
        push(target, source, storage_options=store.options, block_size=BLOCK, on_chunk=rewrite)
    assert _visible(store, target) == []


def test_ls_hashes_an_object_pushed_by_other_means(store: Store, tmp_path: Path) -> None:
    target = _target(store, tmp_path, IN_ZONE[store.scheme])
    store.fs().pipe_file(f"{target.url}/other.bin", b"written elsewhere")

    [listed] = list_objects(target, storage_options=store.options).objects

    assert (listed.key, listed.size, listed.recorded) == ("other.bin", 17, False)
    assert listed.sha256 == hashlib.sha256(b"written elsewhere").hexdigest()


def test_a_bucket_that_does_not_exist_is_named(store: Store, tmp_path: Path) -> None:
    bucket = unique_bucket("gone")
    outputs = write_outputs(tmp_path / "outputs.json", {store.region: f"{store.scheme}://{bucket}"})
    target = resolve_target(STACK, store.region, outputs)
    (tmp_path / "shard.npz").write_bytes(b"data")

    with pytest.raises(DataRefused, match=f"bucket {store.scheme}://{bucket} does not exist"):
        push(target, tmp_path / "shard.npz", storage_options=store.options)
    with pytest.raises(DataRefused, match="does not exist"):
        list_objects(target, storage_options=store.options)
