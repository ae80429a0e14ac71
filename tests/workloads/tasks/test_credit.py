"""The credit task: per-region data with covariate shift, reproducible by seed, one risk model everywhere."""

import numpy as np
import torch

from workloads.tasks.credit import CREDIT, FEATURES, CreditTask, default_probability


def test_a_region_gets_the_same_data_whatever_other_regions_exist():
    alone = CREDIT.partition(["eu"], seed=1, alpha=0.5)["eu"]
    with_others = CREDIT.partition(["us", "eu", "apac"], seed=1, alpha=0.5)["eu"]
    np.testing.assert_array_equal(alone.x_train, with_others.x_train)
    np.testing.assert_array_equal(alone.y_test, with_others.y_test)


def test_another_seed_gives_other_data():
    a = CREDIT.partition(["eu"], seed=1, alpha=0.5)["eu"]
    b = CREDIT.partition(["eu"], seed=2, alpha=0.5)["eu"]
    assert not np.array_equal(a.x_train, b.x_train)


def test_regions_differ_in_who_borrows():
    shards = CREDIT.partition(["eu", "us", "apac"], seed=0, alpha=0.5)
    means = np.array([s.x_train.mean(axis=0) for s in shards.values()])
    # Scaled features: a spread of 0.2 standard units between regions is a real shift.
    assert (means.max(axis=0) - means.min(axis=0)).max() > 0.2


def test_default_risk_follows_one_model_everywhere():
    risky = np.array([[9.6, 22, 0.6, 0.95, 3, 1, 0.8, 0, 2, 0, 4, 0.0]])
    safe = np.array([[11.5, 50, 0.1, 0.05, 0, 25, 0.1, 20, 5, 1, 0, 0.8]])
    assert default_probability(risky)[0] > 0.9
    assert default_probability(safe)[0] < 0.05


def test_shards_are_labelled_binary_with_a_fifth_held_out():
    task = CreditTask(examples_per_region=500)
    shard = task.partition(["eu"], seed=0, alpha=1.0)["eu"]
    assert len(shard.y_test) == 100 and len(shard.y_train) == 400
    assert set(np.unique(shard.y_train)) == {0, 1}
    assert shard.x_train.shape[1:] == (len(FEATURES),) == task.input_shape
    assert task.build_model()(torch.from_numpy(shard.x_test)).shape == (100, 2)
