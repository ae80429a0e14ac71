"""Glue between a node's Flower context and a task: which region this node is, its data, and
the model's weights as Flower arrays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord

from workloads import contract
from workloads.tasks import Shard, load_task
from workloads.trainer.settings import TrainerSettings


def _node_value(context: Context, key: str, env: str, default: str | None = None) -> str:
    """A node setting from its node config (local processes) or environment (containers)."""
    value = context.node_config.get(key) or os.environ.get(env) or default
    if not value:
        raise ValueError(f"this SuperNode has no {key}: start it with --node-config '{key}=...' or set {env}")
    return str(value)


def node_region(context: Context) -> str:
    return _node_value(context, "region", contract.ENV_REGION)


def node_shard(context: Context) -> Shard:
    """The node's own data: only its directory is ever read."""
    return Shard.load(Path(_node_value(context, "data-dir", contract.ENV_DATA_DIR, contract.DATA_MOUNT)))


def initial_weights(settings: TrainerSettings) -> dict[str, np.ndarray]:
    """The run's initial global model: the task's model built from the run's seed. The server
    starts from it, and a node can build the same one itself (downlink.py)."""
    torch.manual_seed(settings.seed)
    return {k: v.detach().numpy() for k, v in load_task(settings.task).build_model().state_dict().items()}


def set_weights(model: torch.nn.Module, arrays: ArrayRecord) -> None:
    model.load_state_dict(arrays.to_torch_state_dict(), strict=True)


def get_weights(model: torch.nn.Module) -> ArrayRecord:
    return ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})


def record_number(record: MetricRecord | ConfigRecord, key: str) -> float:
    """A scalar from a Flower record; ValueError (naming the key) for anything else."""
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key!r} is {value!r}, not a number")
    return float(value)
