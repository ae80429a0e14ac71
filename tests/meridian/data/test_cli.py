"""`python -m meridian data push|ls` as an operator runs it: cloud endpoints and credentials from
the environment only (here pointing at the loopback servers), the bucket from the stack's outputs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meridian.__main__ import main
from tests.meridian.data.stores import AWS_EU_REGION, STACK, Store, unique_bucket, write_outputs
from tests.moto_s3 import aws_environment

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def aws_shell(s3_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process CLI sees that environment too."""
    for name, value in aws_environment(s3_store.endpoint).items():
        monkeypatch.setenv(name, value)


def test_push_then_ls_through_python_dash_m(s3_store: Store, tmp_path: Path) -> None:
    bucket = unique_bucket("data")
    s3_store.make_bucket(bucket, "eu-central-1")
    outputs = write_outputs(tmp_path / "outputs.json", {AWS_EU_REGION: f"s3://{bucket}"})
    shard = os.urandom(50_000)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shard.npz").write_bytes(shard)
    env = {**os.environ, **aws_environment(s3_store.endpoint)}
    common = [STACK, "--region", AWS_EU_REGION, "--outputs", str(outputs)]

    def meridian(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "meridian", "data", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    pushed = meridian("push", *common, str(tmp_path / "data"))
    listed = meridian("ls", *common, "--verify")

    digest = hashlib.sha256(shard).hexdigest()
    assert pushed.returncode == 0, pushed.stderr
    assert f"s3://{bucket}/shard.npz  48.8 KiB  sha256:{digest}" in pushed.stdout
    assert "eu-central-1: 1 object(s), 48.8 KiB pushed" in pushed.stdout and "(zone eu)" in pushed.stdout
    assert listed.returncode == 0, listed.stderr
    assert f"shard.npz  50000  sha256:{digest}" in listed.stdout
    assert f"s3://{bucket} (eu-central-1, zone eu): 1 object(s), 48.8 KiB" in listed.stdout


def test_push_and_ls_on_gcs(
    gs_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gs_store.endpoint)
    bucket = unique_bucket("data")
    gs_store.make_bucket(bucket, "europe-west4")
    outputs = write_outputs(tmp_path / "outputs.json", {gs_store.region: f"gs://{bucket}"})
    labels = b'{"classes": 10}'
    (tmp_path / "labels.json").write_bytes(labels)
    common = [STACK, "--region", gs_store.region, "--outputs", str(outputs)]

    assert main(["data", "push", *common, str(tmp_path / "labels.json")]) == 0
    assert main(["data", "ls", *common]) == 0

    out = capsys.readouterr().out
    assert f"labels.json  15  sha256:{hashlib.sha256(labels).hexdigest()}" in out


@pytest.mark.usefixtures("aws_shell")
def test_a_region_not_in_the_stack_is_refused_and_nothing_written(
    s3_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique_bucket("data")
    s3_store.make_bucket(bucket, "eu-west-1")
    # Outputs can name any bucket; the stack decides which regions exist.
    outputs = write_outputs(tmp_path / "outputs.json", {"eu-west-1": f"s3://{bucket}"})
    (tmp_path / "shard.npz").write_bytes(b"data")

    code = main(
        ["data", "push", STACK, "--region", "eu-west-1", "--outputs", str(outputs), str(tmp_path / "shard.npz")]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert "region 'eu-west-1' is not in stacks/Pulumi.multicloud-prod.yaml; its regions: us-east-1," in err
    assert s3_store.fs().find(bucket) == []


@pytest.mark.usefixtures("aws_shell")
def test_a_bucket_in_the_wrong_zone_is_refused_naming_region_and_bucket(
    s3_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = unique_bucket("data")
    s3_store.make_bucket(bucket, "us-east-2")
    outputs = write_outputs(tmp_path / "outputs.json", {AWS_EU_REGION: f"s3://{bucket}"})
    (tmp_path / "shard.npz").write_bytes(b"data")

    code = main(
        ["data", "push", STACK, "--region", AWS_EU_REGION, "--outputs", str(outputs), str(tmp_path / "shard.npz")]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert (
        f"region eu-central-1 of stacks/Pulumi.multicloud-prod.yaml keeps its data in zone eu, but its bucket "
        f"s3://{bucket} is in us-east-2 (in zone us): nothing written"
    ) in err
    assert s3_store.fs().find(bucket) == []
