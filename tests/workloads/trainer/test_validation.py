"""Update validation: honest updates pass, scaled or malformed ones are rejected naming region and reason."""

import re

import numpy as np
import pytest

from workloads.trainer.validation import norm_outliers, structural_problem, validate_updates

REFERENCE = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(4, np.float32)}


def _update(norm_scale, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (v + rng.standard_normal(v.shape) * norm_scale).astype(np.float32) for k, v in REFERENCE.items()}


def test_honest_updates_of_different_sizes_are_all_accepted():
    updates = {"eu": _update(1.0, 1), "us": _update(1.3, 2), "apac": _update(0.8, 3)}
    accepted, rejections = validate_updates(updates, REFERENCE, z_max=3.5)
    assert sorted(accepted) == ["apac", "eu", "us"] and rejections == []


def test_a_scaled_update_is_rejected_naming_its_region_and_the_round_goes_on():
    updates = {"eu": _update(1.0, 1), "us": _update(1.1, 2), "apac": _update(10.0, 3)}
    accepted, rejections = validate_updates(updates, REFERENCE, z_max=3.5)
    assert sorted(accepted) == ["eu", "us"]
    assert [r.source for r in rejections] == ["apac"]
    assert "robust z from this round's median" in rejections[0].reason


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"w": np.full((4, 3), np.nan, np.float32), "b": np.zeros(4, np.float32)}, "12 non-finite values"),
        ({"w": np.zeros((4, 3), np.float32), "b": np.array([0, np.inf, 0, 0], np.float32)}, "1 non-finite"),
        ({"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)}, r"shape \(3, 4\)"),
        ({"w": np.zeros((4, 3), np.float64), "b": np.zeros(4, np.float32)}, "dtype float64"),
        ({"w": np.zeros((4, 3), np.float32)}, "missing tensors"),
        ({**REFERENCE, "extra": np.zeros(1, np.float32)}, "unexpected tensors"),
    ],
)
def test_a_malformed_update_is_rejected_with_what_is_wrong(broken, reason):
    updates = {"eu": _update(1.0, 1), "us": broken}
    accepted, rejections = validate_updates(updates, REFERENCE, z_max=3.5)
    assert accepted == ["eu"]
    assert rejections[0].source == "us"
    assert re.search(reason, rejections[0].reason)


def test_structurally_sound_updates_pass():
    assert structural_problem(_update(1.0), REFERENCE) is None


def test_two_updates_give_no_distribution_to_judge_norms_by():
    assert norm_outliers({"eu": 1.0, "us": 100.0}, z_max=3.5) == {}


def test_a_tiny_spread_does_not_make_a_slightly_larger_update_an_outlier():
    # MAD here is 0.01; without the floor 1.5 would be 33 z away
    assert norm_outliers({"a": 1.0, "b": 1.01, "c": 1.5}, z_max=3.5) == {}
    assert set(norm_outliers({"a": 1.0, "b": 1.01, "c": 5.0}, z_max=3.5)) == {"c"}
