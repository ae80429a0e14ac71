"""Localizing a global model for one region: fine-tuned, pruned and int8 variants, each
measured (size, single-thread CPU latency at batch 1 and 64, accuracy on the region's test split)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from workloads.localization import LocalizationConfig, localize, measure_variants
from workloads.tasks import Shard, train
from workloads.tasks.digits import DigitsTask

WIDE_DIGITS = DigitsTask(name="digits-512", hidden=512)  # 300k parameters: timings well above noise
REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-1"]


@pytest.fixture(scope="module")
def shards() -> dict[str, Shard]:
    return WIDE_DIGITS.partition(REGIONS, seed=0, alpha=0.5)


@pytest.fixture(scope="module")
def global_state(shards: dict[str, Shard]) -> dict[str, torch.Tensor]:
    """A global model trained briefly on every region's data (what federated training yields)."""
    torch.manual_seed(0)
    model = WIDE_DIGITS.build_model()
    x = np.concatenate([s.x_train for s in shards.values()])
    y = np.concatenate([s.y_train for s in shards.values()])
    train(model, x, y, epochs=1, lr=0.05)
    return model.state_dict()


@pytest.fixture(scope="module")
def report(global_state: dict[str, torch.Tensor], shards: dict[str, Shard]) -> dict[str, Any]:
    return measure_variants(WIDE_DIGITS, global_state, shards["eu-west-1"], LocalizationConfig(latency_repeats=100))


def test_fine_tuning_on_the_region_improves_its_accuracy(report: dict[str, Any]) -> None:
    assert report["accuracy_after_finetune"] > report["accuracy_before_finetune"]
    assert report["variants"]["fp32"]["accuracy"] == report["accuracy_after_finetune"]


def test_the_pruned_model_is_smaller_and_faster(report: dict[str, Any]) -> None:
    fp32, pruned = report["variants"]["fp32"], report["variants"]["pruned"]
    assert pruned["parameters"] < 0.3 * fp32["parameters"]  # half of each hidden layer: ~0.28x
    assert report["pruned_vs_fp32"]["size_ratio"] > 3.0
    assert report["pruned_vs_fp32"]["speedup_batch64"] > 1.5  # measured, one thread
    assert report["pruned_vs_fp32"]["accuracy_drop_points"] < 5.0  # after recovery fine-tuning


def test_the_int8_model_is_four_times_smaller_at_nearly_the_same_accuracy(report: dict[str, Any]) -> None:
    assert report["variants"]["int8"]["parameters"] == report["variants"]["fp32"]["parameters"]
    assert report["int8_vs_fp32"]["size_ratio"] > 3.5
    assert abs(report["int8_vs_fp32"]["accuracy_drop_points"]) <= 2.0  # <= 3 of ~150 test digits
    assert report["int8_vs_fp32"]["speedup_batch64"] > 1.0


def test_the_report_is_plain_json_with_every_measurement(report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(report)) == report
    for variant in ("fp32", "pruned", "int8"):
        assert set(report["variants"][variant]) == {
            "accuracy",
            "size_bytes",
            "parameters",
            "latency_ms_batch1",
            "latency_ms_batch64",
        }
        assert report["variants"][variant]["latency_ms_batch1"] > 0
    assert report["config"]["sparsity"] == 0.5


def test_localize_returns_the_models_it_measured(
    global_state: dict[str, torch.Tensor], shards: dict[str, Shard]
) -> None:
    config = LocalizationConfig(finetune_epochs=1, recovery_epochs=1, latency_repeats=1, sparsity=0.75)
    localized = localize(WIDE_DIGITS, global_state, shards["us-east-1"], config)
    assert localized.models.keys() == localized.metrics.keys()
    assert localized.models["pruned"][0].out_features == 128  # pyright: ignore[reportIndexIssue]


def test_global_weights_of_another_architecture_are_refused(shards: dict[str, Shard]) -> None:
    small = DigitsTask().build_model().state_dict()
    with pytest.raises(ValueError, match="the global weights do not fit task 'digits-512'"):
        localize(WIDE_DIGITS, small, shards["eu-west-1"])
