"""`python -m workloads.localization localize` localizes one region and publishes all three variants,
signed; what a consumer fetches and loads performs as the published metrics say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from workloads.localization.__main__ import main
from workloads.registry import ArtifactId, Variant, fetch_verified, generate_keypair, latest_version, load_model
from workloads.tasks import Shard, evaluate, load_task

REGION = "eu-west-1"


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    digits = load_task("digits")
    shard = digits.partition([REGION, "us-east-1"], seed=0, alpha=1.0)[REGION]
    shard.save(tmp_path / "data" / REGION)
    torch.manual_seed(0)
    save_file(digits.build_model().state_dict(), tmp_path / "global.safetensors")
    private_key, public_key = generate_keypair(tmp_path / "keys")
    return {
        "data": tmp_path / "data" / REGION,
        "global": tmp_path / "global.safetensors",
        "private": private_key,
        "public": public_key,
        "registry": tmp_path / "registry",
    }


def run(inputs: dict[str, Path], *extra: str, version: str = "4") -> int:
    return main([
        "localize", "--global-model", str(inputs["global"]), "--task", "digits", "--data-dir", str(inputs["data"]),
        "--region", REGION, "--store", f"file://{inputs['registry']}", "--signing-key", str(inputs["private"]),
        "--version", version, "--parent-version", "3", "--finetune-epochs", "3", "--recovery-epochs", "2", *extra,
    ])  # fmt: skip


def test_every_variant_is_published_signed_and_loads_with_its_measured_accuracy(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(inputs, "--report", str(tmp_path / "report.json")) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "report.json").read_text())
    assert printed["region"] == REGION and printed["version"] == "4"
    shard = Shard.load(inputs["data"])
    store = f"file://{inputs['registry']}"
    for variant in Variant:
        artifact = ArtifactId("meridian", "4", REGION, variant)
        verified = fetch_verified(store, artifact, inputs["public"], tmp_path / "cache" / artifact.path)
        manifest = verified.manifest
        assert (manifest.task, manifest.parent_version) == ("digits", "3")
        assert manifest.metrics["accuracy_before_finetune"] == printed["accuracy_before_finetune"]
        assert manifest.metrics["accuracy"] == printed["variants"][variant.value]["accuracy"]
        accuracy = evaluate(load_model(verified), shard.x_test, shard.y_test).accuracy
        assert accuracy == manifest.metrics["accuracy"]
        assert latest_version(store, "meridian", REGION, variant) == "4"


def test_global_weights_that_do_not_fit_the_task_publish_nothing(inputs: dict[str, Path]) -> None:
    save_file({"0.weight": torch.zeros(3, 3)}, inputs["global"])
    with pytest.raises(ValueError, match="the global weights do not fit task 'digits'"):
        run(inputs)
    assert not inputs["registry"].exists()


def test_a_missing_shard_is_named_before_any_work(inputs: dict[str, Path]) -> None:
    inputs["data"] = inputs["data"].parent / "ap-southeast-1"
    with pytest.raises(FileNotFoundError, match=r"no shard at .*ap-southeast-1"):
        run(inputs)


def test_shuffle_labels_publishes_a_worse_model_for_the_canary_drill(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(inputs) == 0
    honest = json.loads(capsys.readouterr().out)["variants"]["fp32"]["accuracy"]
    # The same pass, same seed, on the training labels permuted: the drill's bad candidate.
    assert run(inputs, "--shuffle-labels", version="5") == 0
    shuffled = json.loads(capsys.readouterr().out)["variants"]["fp32"]["accuracy"]
    assert shuffled < honest - 0.3
    assert latest_version(f"file://{inputs['registry']}", "meridian", REGION, Variant.FP32) == "5"
