"""Localize a global model for one region and publish the region's signed variants: what both
commands of `python -m workloads.localization` end with (`localize`: one given model and shard;
`follow`: the global registry's newest model and the region's bucket)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from workloads.localization.localize import LocalizationConfig, localize
from workloads.registry.artifact import ArtifactId, Variant
from workloads.registry.signing import Signer
from workloads.registry.store import publish
from workloads.tasks import Shard, Task


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Global weights: a safetensors file, or a torch state dict (.pt/.pth, tensors only)."""
    if not path.is_file():
        raise FileNotFoundError(f"global model {path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def localize_and_publish(
    task: Task,
    task_ref: str,
    global_state: Mapping[str, torch.Tensor],
    shard: Shard,
    config: LocalizationConfig,
    *,
    model_name: str,
    version: str,
    parent_version: str,
    region: str,
    store: str,
    signing_key: Signer,
    variants: Iterable[Variant] = tuple(Variant),
) -> dict[str, Any]:
    """Fine-tune, prune and quantize, then publish `variants` (signed by `signing_key`, loaded
    once by the caller: a KMS key is reached before the work starts); return the measurement table with the region and version."""
    localized = localize(task, dict(global_state), shard, config)
    for variant in variants:
        publish(
            localized.models[variant],
            task,
            store,
            signing_key,
            artifact=ArtifactId(model_name, version, region, variant),
            parent_version=parent_version,
            metrics={"accuracy_before_finetune": localized.global_accuracy, **localized.metrics[variant]},
            task_ref=task_ref,
        )
    return {"region": region, "version": version, **localized.report()}
