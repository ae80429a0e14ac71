"""`python -m workloads.localization follow`: one pass of a region's localizer, as its CronJob runs
it. It follows the global registry's newest model (published by the ServerApp's own code), over
file://, http(s):// and S3 (moto, real HTTP), and publishes the region's signed variants once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import s3fs
import torch
from safetensors.torch import save_file

from tests.moto_s3 import aws_environment, moto_s3
from workloads import contract
from workloads.localization.__main__ import main
from workloads.registry import ArtifactId, Variant, fetch_verified, generate_keypair, latest_version
from workloads.registry.artifact import MANIFEST_FILE, SIGNATURE_FILE
from workloads.registry.serve import RegistryServer
from workloads.tasks import load_task
from workloads.trainer.publish import publish_global_model
from workloads.trainer.records import MODEL_FILE

REGION = "eu-west-1"
VERSION = "20261130.061500"  # the global model's: the run's UTC completion time
QUICK = ["--finetune-epochs", "1", "--recovery-epochs", "1"]


@dataclass
class Home:
    """The home's signed global model and keys, a region's keys and data."""

    root: Path
    home_public: Path
    region_private: Path
    region_public: Path
    data: Path

    def publish_global(self, store: str, version: str = VERSION) -> None:
        """What the ServerApp does when a run completes."""
        run = self.root / f"run-{version}"
        run.mkdir()
        torch.manual_seed(0)
        save_file(load_task("digits").build_model().state_dict(), run / MODEL_FILE)
        info = {"task_reference": "digits", "round": 1, "metrics": {"accuracy": 0.5, "loss": 1.0}}
        environ = contract.global_publish_env(store, str(self.root / "home" / contract.SIGNING_KEY_FILE))
        completed = datetime.strptime(version, "%Y%m%d.%H%M%S").replace(tzinfo=UTC)
        assert publish_global_model(run, info, environ, completed) is not None


@pytest.fixture
def home(tmp_path: Path) -> Home:
    _, home_public = generate_keypair(tmp_path / "home")
    region_private, region_public = generate_keypair(tmp_path / "region")
    digits = load_task("digits")
    digits.partition([REGION, "us-east-1"], seed=0, alpha=1.0)[REGION].save(tmp_path / "data")
    return Home(tmp_path, home_public, region_private, region_public, tmp_path / "data")


def follow(home: Home, global_registry: str, store: str, data_url: str, *extra: str) -> int:
    return main([
        "follow", *contract.localizer_args(
            global_registry=global_registry, global_key=str(home.home_public), region=REGION, data_url=data_url,
            store=store, signing_key=str(home.region_private), task="digits", work_dir=str(home.root / "work"),
        ), *QUICK, *extra,
    ])  # fmt: skip


def regional(version: str, variant: Variant) -> ArtifactId:
    return ArtifactId(contract.MODEL_NAME, version, REGION, variant)


def signed_files(registry: Path) -> dict[str, bytes]:
    return {str(p.relative_to(registry)): p.read_bytes() for p in sorted(registry.rglob("*")) if p.is_file()}


def test_a_new_global_version_is_localized_once_then_up_to_date(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.publish_global((tmp_path / "registry" / "global").as_uri())
    store = (tmp_path / "registry" / REGION).as_uri()
    data_url = home.data.as_uri()
    # The global registry read through its CDN path (HTTP), as regions read it in the cloud.
    with RegistryServer(tmp_path / "registry") as cdn:
        assert follow(home, f"{cdn.url}/global", store, data_url) == 0
        assert f"published fp32, pruned, int8 of version {VERSION}" in capsys.readouterr().err
        for variant in Variant:
            artifact = regional(VERSION, variant)
            manifest = fetch_verified(store, artifact, home.region_public, tmp_path / "cache" / artifact.path).manifest
            assert (manifest.version, manifest.parent_version, manifest.task) == (VERSION, VERSION, "digits")
            assert latest_version(store, contract.MODEL_NAME, REGION, variant) == VERSION
        before = signed_files(tmp_path / "registry" / REGION)

        assert follow(home, f"{cdn.url}/global", store, data_url) == 0
        assert f"{REGION}: up to date with global version {VERSION}" in capsys.readouterr().err
        assert signed_files(tmp_path / "registry" / REGION) == before


def test_a_pass_cut_off_between_variants_is_finished_by_the_next(home: Home, tmp_path: Path) -> None:
    """fp32 and pruned complete, int8 never written: the next pass publishes int8 alone and
    leaves the complete (immutable) artifacts as they are."""
    home.publish_global((tmp_path / "global").as_uri())
    registry = tmp_path / "registry"
    assert follow(home, (tmp_path / "global").as_uri(), registry.as_uri(), home.data.as_uri()) == 0
    shutil.rmtree(registry / regional(VERSION, Variant.INT8).path)
    kept = signed_files(registry)

    assert follow(home, (tmp_path / "global").as_uri(), registry.as_uri(), home.data.as_uri()) == 0
    after = signed_files(registry)
    assert {name: after[name] for name in kept} == kept
    int8 = regional(VERSION, Variant.INT8)
    fetch_verified(registry.as_uri(), int8, home.region_public, tmp_path / "cache")


def test_an_unsigned_leftover_is_named_and_nothing_else_is_written(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.publish_global((tmp_path / "global").as_uri())
    registry = tmp_path / "registry"
    assert follow(home, (tmp_path / "global").as_uri(), registry.as_uri(), home.data.as_uri()) == 0
    int8 = registry / regional(VERSION, Variant.INT8).path
    (int8 / SIGNATURE_FILE).unlink()  # cut off after the manifest, before the signature
    kept = signed_files(registry)

    assert follow(home, (tmp_path / "global").as_uri(), registry.as_uri(), home.data.as_uri()) == 1
    error = capsys.readouterr().err
    assert f"--store {registry.as_uri()}" in error and regional(VERSION, Variant.INT8).path in error
    assert "remove that directory" in error
    assert signed_files(registry) == kept and (int8 / MANIFEST_FILE).exists()


def test_a_global_model_not_signed_by_the_home_is_refused_and_nothing_published(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.publish_global((tmp_path / "global").as_uri())
    home.home_public = home.region_public  # the wrong key for the global model
    registry = tmp_path / "registry"
    assert follow(home, (tmp_path / "global").as_uri(), registry.as_uri(), home.data.as_uri()) == 1
    error = capsys.readouterr().err
    assert f"--global-registry {(tmp_path / 'global').as_uri()}" in error and "not by the trusted key" in error
    assert not registry.exists() and not (home.root / "work" / "data").exists()  # no data synced either


def test_no_global_model_yet_is_nothing_to_do(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "global").mkdir()
    assert follow(home, (tmp_path / "global").as_uri(), (tmp_path / "registry").as_uri(), home.data.as_uri()) == 0
    assert "no global model" in capsys.readouterr().err and not (tmp_path / "registry").exists()


def test_a_bad_data_url_is_named(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.publish_global((tmp_path / "global").as_uri())
    missing = (tmp_path / "nowhere").as_uri()
    assert follow(home, (tmp_path / "global").as_uri(), (tmp_path / "registry").as_uri(), missing) == 1
    assert f"--data-url: {missing}: nothing there" in capsys.readouterr().err
    assert not (tmp_path / "registry").exists()


@pytest.fixture
def s3_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server, reached as a pod reaches S3: endpoint and credentials from the environment."""
    with moto_s3() as s3:
        for name, value in aws_environment(s3.endpoint).items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # an instance cached for another endpoint
        for bucket in ("home-registry", "eu-registry", "eu-data"):
            s3.client.create_bucket(Bucket=bucket)
        yield s3.endpoint
        s3fs.S3FileSystem.clear_instance_cache()


def test_s3_registries_and_data_bucket(home: Home, s3_environment: str, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = s3fs.S3FileSystem()
    s3.put_file(str(home.data / "shard.npz"), "eu-data/shard.npz")
    home.publish_global("s3://home-registry/global")
    store = f"s3://eu-registry/{REGION}"
    assert follow(home, "s3://home-registry/global", store, "s3://eu-data") == 0
    for variant in Variant:
        artifact = regional(VERSION, variant)
        fetch_verified(store, artifact, home.region_public, home.root / "cache" / artifact.path)
    assert s3.exists(f"eu-registry/{REGION}/{regional(VERSION, Variant.INT8).path}/{SIGNATURE_FILE}")
    capsys.readouterr()
    assert follow(home, "s3://home-registry/global", store, "s3://eu-data") == 0
    assert "up to date" in capsys.readouterr().err


def test_the_newest_global_version_is_followed(home: Home, tmp_path: Path) -> None:
    """Versions are UTC completion times: the later run is `latest`, the region follows it."""
    global_store = (tmp_path / "global").as_uri()
    home.publish_global(global_store, "20261130.235959")
    home.publish_global(global_store, "20261201.000000")
    assert latest_version(global_store, contract.MODEL_NAME, contract.GLOBAL_REGION, Variant.FP32) == "20261201.000000"
    registry = tmp_path / "registry"
    assert follow(home, global_store, registry.as_uri(), home.data.as_uri()) == 0
    assert latest_version(registry.as_uri(), contract.MODEL_NAME, REGION, Variant.FP32) == "20261201.000000"
