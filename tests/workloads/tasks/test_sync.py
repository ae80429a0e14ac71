"""sync-data: a region's data from its bucket (s3://, gs://, file://) into a SuperNode's data
directory, verified as a loadable shard before anything lands; on failure the destination is
left as it was."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import fsspec
import numpy as np
import pytest

from tests.workloads.registry.conftest import s3_registry  # noqa: F401  (a moto S3 server on loopback)
from workloads.tasks import Shard
from workloads.tasks.__main__ import main, prepare_data
from workloads.tasks.sync import SyncError, sync_data

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def region_data(tmp_path_factory) -> Path:
    """What prepare-data wrote for one region: shard.npz and shard.json."""
    out = tmp_path_factory.mktemp("prepared")
    prepare_data("digits", ["eu", "us"], out, seed=0, alpha=0.5)
    return out / "eu"


@pytest.fixture
def s3_source(s3_registry, region_data) -> tuple[str, dict]:  # noqa: F811
    """(s3://bucket/<fresh prefix>, storage options) holding the region's data."""
    bucket_url, options = s3_registry
    url = f"{bucket_url}/data/{uuid.uuid4().hex}"
    fs = fsspec.filesystem("s3", **options)
    for path in region_data.iterdir():
        fs.put_file(str(path), f"{url}/{path.name}")
    return url, options


def _same_shard(a: Shard, b: Shard) -> bool:
    return all(
        np.array_equal(getattr(a, name), getattr(b, name)) for name in ("x_train", "y_train", "x_test", "y_test")
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_directory_url_syncs_into_a_loadable_shard(region_data, tmp_path):
    copied = sync_data(region_data.as_uri(), tmp_path / "data")
    assert sorted(map(str, copied)) == ["shard.json", "shard.npz"]
    assert _same_shard(Shard.load(tmp_path / "data"), Shard.load(region_data))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["shard.json", "shard.npz"]  # no staging left


def test_the_command_line_syncs_and_says_what_it_did(region_data, tmp_path, capsys):
    assert main(["sync-data", "--source", region_data.as_uri(), "--dest", str(tmp_path / "data")]) == 0
    assert "2 files" in capsys.readouterr().out
    assert _same_shard(Shard.load(tmp_path / "data"), Shard.load(region_data))


def test_an_s3_prefix_syncs_into_a_loadable_shard(s3_source, region_data, tmp_path):
    url, options = s3_source
    sync_data(url, tmp_path / "data", storage_options=options)
    assert _same_shard(Shard.load(tmp_path / "data"), Shard.load(region_data))


def test_the_init_container_command_reads_s3_with_the_processs_own_credentials(s3_source, tmp_path):
    """No storage options: the default AWS credential chain (the pod's role in the cloud; here
    the environment) and endpoint, as in the SuperNode pod."""
    url, options = s3_source
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": options["key"],
        "AWS_SECRET_ACCESS_KEY": options["secret"],
        "AWS_ENDPOINT_URL": options["endpoint_url"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "workloads.tasks", "sync-data", "--source", url, "--dest", str(tmp_path / "data")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Shard.load(tmp_path / "data").y_train.size > 0


@pytest.mark.parametrize("missing", ["file:///nonexistent/meridian/eu", "s3://meridian-registry/no/such/prefix"])
def test_a_missing_source_is_named_in_the_error(s3_registry, tmp_path, missing):  # noqa: F811
    options = s3_registry[1] if missing.startswith("s3://") else None
    with pytest.raises(SyncError, match=f"{missing}: nothing there"):
        sync_data(missing, tmp_path / "data", storage_options=options)
    assert not (tmp_path / "data").exists()


def test_a_missing_bucket_is_named_in_the_error(s3_registry, tmp_path):  # noqa: F811
    with pytest.raises(SyncError, match="s3://no-such-bucket-meridian: "):
        sync_data("s3://no-such-bucket-meridian", tmp_path / "data", storage_options=s3_registry[1])


def test_a_file_that_is_not_a_shard_is_refused_and_the_destination_keeps_what_it_had(region_data, tmp_path, capsys):
    source = tmp_path / "bad"
    source.mkdir()
    (source / "shard.npz").write_bytes(b"not a numpy archive")
    dest = tmp_path / "data"
    sync_data(region_data.as_uri(), dest)  # a previous good sync
    (dest / "notes.txt").write_text("kept")
    before = _snapshot(dest)
    assert main(["sync-data", "--source", source.as_uri(), "--dest", str(dest)]) == 1
    assert f"{source.as_uri()}: shard.npz is not a loadable shard" in capsys.readouterr().err
    assert _snapshot(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt", "shard.json", "shard.npz"]


def test_an_archive_without_the_shards_arrays_is_refused(tmp_path):
    source = tmp_path / "partial"
    source.mkdir()
    np.savez(source / "shard.npz", x_train=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(SyncError, match="not a loadable shard"):
        sync_data(source.as_uri(), tmp_path / "data")


def test_data_without_a_shard_at_its_top_is_refused_naming_what_is_there(region_data, tmp_path):
    source = tmp_path / "nested"
    (source / "eu").mkdir(parents=True)
    (source / "eu" / "shard.npz").write_bytes((region_data / "shard.npz").read_bytes())
    with pytest.raises(SyncError, match=r"no shard.npz at its top \(it holds eu/shard.npz\)"):
        sync_data(source.as_uri(), tmp_path / "data")


def test_an_object_key_climbing_out_of_the_prefix_is_refused(s3_registry, region_data, tmp_path):  # noqa: F811
    bucket_url, options = s3_registry
    prefix = f"data/{uuid.uuid4().hex}"
    s3 = boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = bucket_url.removeprefix("s3://")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/shard.npz", Body=(region_data / "shard.npz").read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/../../escaped.txt", Body=b"x")
    with pytest.raises(SyncError, match="would land outside the destination"):
        sync_data(f"{bucket_url}/{prefix}", tmp_path / "data", storage_options=options)
    assert not (tmp_path / "escaped.txt").exists()


def test_gs_without_gcsfs_fails_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as in an image built without it
    # ...and as if no earlier test in this process had imported it: fsspec keeps an implementation
    # it has loaded in its module's `_registry` (behind the read-only `fsspec.registry` mapping).
    loaded = importlib.import_module("fsspec.registry")._registry
    for protocol in ("gs", "gcs"):
        monkeypatch.delitem(loaded, protocol, raising=False)
    with pytest.raises(SyncError, match="gs://meridian-eu/data: reading gs:// needs the gcsfs package"):
        sync_data("gs://meridian-eu/data", tmp_path / "data")


def test_an_unsupported_scheme_is_refused(tmp_path):
    with pytest.raises(SyncError, match="expected s3://bucket"):
        sync_data("https://example.com/data", tmp_path / "data")
