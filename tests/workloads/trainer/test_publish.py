"""When a run completes, the ServerApp publishes the final global model as a signed artifact
(publish.py), to the store its SuperLink's environment names; with none, it publishes nothing."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import s3fs
import torch
from flwr.app import Context, RecordDict
from safetensors.torch import load_file

from tests.moto_s3 import aws_environment, moto_s3
from workloads import contract
from workloads.registry import ArtifactId, Variant, fetch_verified, generate_keypair, latest_version, load_model
from workloads.registry.store import version_order
from workloads.trainer import server_app
from workloads.trainer.publish import global_version, publish_global_model
from workloads.trainer.records import MODEL_FILE


def test_versions_are_utc_completion_times_that_sort_and_name_artifacts() -> None:
    earlier = global_version(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    later = global_version(datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC))
    assert (earlier, later) == ("20261130.235959", "20261201.000000")
    assert version_order(earlier) < version_order(later)
    assert version_order("20261201.000009") < version_order("20261201.000010")
    ArtifactId(contract.MODEL_NAME, later, contract.GLOBAL_REGION, Variant.FP32)


def test_the_completed_run_is_published_signed_beside_its_saved_model(in_process, tmp_path: Path) -> None:
    run = in_process({"rounds": 1})
    private, public = generate_keypair(tmp_path / "keys")
    store = (tmp_path / "registry" / "global").as_uri()
    manifest = publish_global_model(run.out_dir, run.info, contract.global_publish_env(store, str(private)))

    assert manifest is not None and re.fullmatch(r"\d{8}\.\d{6}", manifest.version)
    artifact = ArtifactId(contract.MODEL_NAME, manifest.version, contract.GLOBAL_REGION, Variant.FP32)
    assert latest_version(store, contract.MODEL_NAME, contract.GLOBAL_REGION, Variant.FP32) == manifest.version
    verified = fetch_verified(store, artifact, public, tmp_path / "cache")
    assert verified.manifest.task == "digits" and verified.manifest.metrics["accuracy"] == run.accuracy
    saved = load_file(str(run.out_dir / MODEL_FILE))  # still there, as before
    published = load_model(verified).state_dict()
    assert all(torch.equal(saved[name], published[name]) for name in saved)


def test_without_a_store_nothing_is_published_and_the_log_says_so(
    in_process, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = in_process({"rounds": 1})
    with caplog.at_level(logging.INFO, logger="flwr"):
        assert publish_global_model(run.out_dir, run.info, {}) is None
    assert f"{contract.ENV_GLOBAL_STORE_URL} is not set" in caplog.text


def test_a_store_without_a_signing_key_is_an_error_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{contract.ENV_GLOBAL_STORE_URL}.*{contract.ENV_SIGNING_KEY}"):
        publish_global_model(tmp_path, {}, {contract.ENV_GLOBAL_STORE_URL: tmp_path.as_uri()})


def test_the_server_apps_main_publishes_from_its_environment_to_s3(
    in_process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() as the SuperLink's ServerApp subprocess runs it: the store (moto's S3, reached
    through the environment's endpoint and credentials, as IRSA gives a pod) and the key from
    its environment. `train` runs in process (conftest.py) instead of over a real Grid."""
    private, public = generate_keypair(tmp_path / "keys")
    monkeypatch.setattr(
        server_app,
        "train",
        lambda grid, settings, run_id: in_process({"rounds": 1, "out-dir": str(settings.out_path)}).info,
    )
    store = "s3://home-registry/global"
    with moto_s3() as s3:
        s3.client.create_bucket(Bucket="home-registry")
        for name, value in {
            **aws_environment(s3.endpoint),
            **contract.global_publish_env(store, str(private)),
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # an instance cached for another endpoint
        try:
            context = Context(
                run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={"out-dir": str(tmp_path / "run")}
            )
            server_app.main(None, context)  # type: ignore[arg-type]
            version = latest_version(store, contract.MODEL_NAME, contract.GLOBAL_REGION, Variant.FP32)
            assert version is not None
            artifact = ArtifactId(contract.MODEL_NAME, version, contract.GLOBAL_REGION, Variant.FP32)
            fetch_verified(store, artifact, public, tmp_path / "cache")
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
