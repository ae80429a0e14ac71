"""The digits task: disjoint, reproducible, label-skewed regional shards and the model's shapes."""

import numpy as np
import pytest
import torch

from workloads.tasks.digits import DIGITS, DIGITS_LARGE

REGIONS = ["eu", "us", "apac"]


def test_the_same_seed_gives_the_same_shards():
    first = DIGITS.partition(REGIONS, seed=3, alpha=0.5)
    second = DIGITS.partition(REGIONS, seed=3, alpha=0.5)
    for region in REGIONS:
        np.testing.assert_array_equal(first[region].x_train, second[region].x_train)
        np.testing.assert_array_equal(first[region].y_test, second[region].y_test)


def test_regions_share_no_example_and_together_hold_the_whole_dataset():
    shards = DIGITS.partition(REGIONS, seed=0, alpha=0.5)
    train_total = sum(len(s.y_train) for s in shards.values())
    test_total = sum(len(s.y_test) for s in shards.values())
    assert train_total + test_total == 1797
    rows = np.concatenate([np.concatenate([s.x_train, s.x_test]) for s in shards.values()])
    assert len(np.unique(rows, axis=0)) == len(np.unique(_all_digit_rows(), axis=0))


def _all_digit_rows():
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


def _label_skew(alpha):
    shards = DIGITS.partition(REGIONS, seed=0, alpha=alpha)
    shares = np.array([np.bincount(s.y_train, minlength=10) / len(s.y_train) for s in shards.values()])
    return np.abs(shares - shares.mean(axis=0)).sum()


def test_smaller_alpha_skews_labels_more():
    assert _label_skew(0.1) > 2 * _label_skew(100.0)


def test_a_region_tests_on_the_labels_it_trains_on():
    shards = DIGITS.partition(REGIONS, seed=0, alpha=0.3)
    for shard in shards.values():
        train_share = np.bincount(shard.y_train, minlength=10) / len(shard.y_train)
        test_share = np.bincount(shard.y_test, minlength=10) / len(shard.y_test)
        assert np.abs(train_share - test_share).sum() < 0.35


def test_shards_have_the_declared_shapes_and_types():
    shard = DIGITS.partition(REGIONS, seed=0, alpha=0.5)["eu"]
    assert shard.x_train.dtype == np.float32 and shard.x_train.shape[1:] == DIGITS.input_shape
    assert shard.y_train.dtype == np.int64 and 0 <= shard.y_train.min() <= shard.y_train.max() <= 9
    assert shard.x_train.min() >= 0.0 and shard.x_train.max() <= 1.0


def test_models_map_a_batch_to_class_logits():
    logits = DIGITS.build_model()(torch.zeros(5, 64))
    assert logits.shape == (5, 10)


def test_the_large_variant_has_over_a_million_parameters():
    params = sum(p.numel() for p in DIGITS_LARGE.build_model().parameters())
    assert params >= 1_000_000
    assert DIGITS_LARGE.name == "digits-large"


@pytest.mark.parametrize("regions", [[], ["a", "a"], ["a/b"], [".."]])
def test_unusable_region_names_are_refused(regions):
    with pytest.raises(ValueError, match="region"):
        DIGITS.partition(regions, seed=0, alpha=0.5)


def test_an_impossible_split_says_what_to_change():
    with pytest.raises(ValueError, match="raise alpha or use fewer regions"):
        DIGITS.partition([f"r{i}" for i in range(150)], seed=0, alpha=0.01)
