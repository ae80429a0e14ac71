"""A task written the way a Meridian user would: outside Meridian, named by dotted path
(`iris:TASK` with this directory on PYTHONPATH). It uses only the public `Shard` type."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_iris

from workloads.tasks import Shard


class IrisTask:
    name = "iris"
    input_shape = (4,)
    num_classes = 3

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    def partition(self, regions, seed, alpha):
        x, y = load_iris(return_X_y=True)
        x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
        order = np.random.default_rng(seed).permutation(len(x))
        shards = {}
        for region, part in zip(regions, np.array_split(order, len(regions)), strict=True):
            cut = len(part) * 3 // 4
            train, test = part[:cut], part[cut:]
            shards[region] = Shard(x[train], y[train].astype(np.int64), x[test], y[test].astype(np.int64))
        return shards


TASK = IrisTask()
