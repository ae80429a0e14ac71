"""The task protocol: data + model + train + evaluate, the one seam every workload shares.

The trainer (Flower), localization and the inference servers only ever talk to a task through
this protocol, so a user brings their own model by writing one object that satisfies it and
naming it by dotted path (`mypackage.mymodule:TASK`) in the run config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@dataclass(frozen=True)
class Shard:
    """One region's data. It is written once to the region's own directory and only ever read
    from there: in the cloud that directory is the region's bucket, mounted into its SuperNode."""

    x_train: np.ndarray  # float32, shape (n, *input_shape)
    y_train: np.ndarray  # int64, shape (n,)
    x_test: np.ndarray
    y_test: np.ndarray

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "shard.npz", **self.__dict__)

    @classmethod
    def load(cls, directory: Path) -> Shard:
        path = directory / "shard.npz"
        if not path.is_file():
            raise FileNotFoundError(f"no shard at {path}: run prepare-data for this region first")
        with np.load(path) as data:
            return cls(**{name: data[name] for name in ("x_train", "y_train", "x_test", "y_test")})


@runtime_checkable
class Task(Protocol):
    """What Meridian needs to know about a model and its data."""

    # Read-only members: a plain class attribute or a frozen dataclass field both satisfy them.
    @property
    def name(self) -> str: ...

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example, without the batch dimension."""
        ...

    @property
    def num_classes(self) -> int: ...

    def build_model(self) -> torch.nn.Module:
        """A fresh model: float32 input (batch, *input_shape) -> logits (batch, num_classes)."""
        ...

    def partition(self, regions: Sequence[str], seed: int, alpha: float) -> dict[str, Shard]:
        """Deterministic per-region shards (non-IID where the task models it)."""
        ...
