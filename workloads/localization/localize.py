"""Localization of the global model for one region: fine-tune, prune, quantize, measure.

- fp32: the global model fine-tuned on the region's training split.
- pruned: fp32 with `sparsity` of the units of every prunable layer removed (structured), then
  fine-tuned again on the same data to recover.
- int8: fp32 with dynamic int8 Linear layers (per-channel weight scales), for CPU edges.
Every accuracy is measured on the region's own test split.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from workloads.localization.measure import cpu_latency_ms, parameter_count, size_bytes
from workloads.localization.pruning import prune_structured
from workloads.registry.artifact import Variant
from workloads.registry.variants import quantize_int8
from workloads.tasks import Shard, Task, evaluate, train


@dataclass(frozen=True)
class LocalizationConfig:
    finetune_epochs: int = 5
    recovery_epochs: int = 5
    learning_rate: float = 0.02
    batch_size: int = 32
    sparsity: float = 0.5  # fraction of each prunable layer's units removed
    int8_per_channel: bool = True  # one weight scale per output neuron (more accurate)
    latency_repeats: int = 200
    seed: int = 0


@dataclass
class Localized:
    """The region's variants and their measurements."""

    task: str
    config: LocalizationConfig
    global_accuracy: float  # the global model on the region's test split, before fine-tuning
    models: dict[Variant, nn.Module]
    metrics: dict[Variant, dict[str, float]] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """A plain JSON-ready table (what bench/federated.py records)."""
        fp32, pruned, int8 = (self.metrics[v] for v in (Variant.FP32, Variant.PRUNED, Variant.INT8))

        def versus(variant: dict[str, float]) -> dict[str, float]:
            return {
                "size_ratio": fp32["size_bytes"] / variant["size_bytes"],
                "speedup_batch1": fp32["latency_ms_batch1"] / variant["latency_ms_batch1"],
                "speedup_batch64": fp32["latency_ms_batch64"] / variant["latency_ms_batch64"],
                "accuracy_drop_points": 100.0 * (fp32["accuracy"] - variant["accuracy"]),
            }

        return {
            "task": self.task,
            "config": asdict(self.config),
            "accuracy_before_finetune": self.global_accuracy,
            "accuracy_after_finetune": fp32["accuracy"],
            "variants": {variant.value: dict(values) for variant, values in self.metrics.items()},
            "pruned_vs_fp32": versus(pruned),
            "int8_vs_fp32": versus(int8),
        }


def _as_model(task: Task, global_model: nn.Module | Mapping[str, torch.Tensor]) -> nn.Module:
    if isinstance(global_model, nn.Module):
        return copy.deepcopy(global_model).cpu()
    model = task.build_model()
    try:
        model.load_state_dict(dict(global_model), strict=True)
    except RuntimeError as error:
        raise ValueError(f"the global weights do not fit task {task.name!r}: {error}") from None
    return model


def localize(
    task: Task,
    global_model: nn.Module | Mapping[str, torch.Tensor],
    shard: Shard,
    config: LocalizationConfig | None = None,
) -> Localized:
    """All three variants of the global model (a module or a state dict) for this shard."""
    config = config or LocalizationConfig()
    torch.manual_seed(config.seed)
    x_train, y_train, x_test, y_test = shard.x_train, shard.y_train, shard.x_test, shard.y_test

    def fine_tune(model: nn.Module, epochs: int) -> None:
        train(
            model,
            x_train,
            y_train,
            epochs=epochs,
            batch_size=config.batch_size,
            lr=config.learning_rate,
            seed=config.seed,
        )

    fp32 = _as_model(task, global_model)
    global_accuracy = evaluate(fp32, x_test, y_test).accuracy
    fine_tune(fp32, config.finetune_epochs)
    pruned = prune_structured(fp32, config.sparsity)
    fine_tune(pruned, config.recovery_epochs)
    int8 = quantize_int8(fp32.eval(), per_channel=config.int8_per_channel)
    models = {Variant.FP32: fp32.eval(), Variant.PRUNED: pruned.eval(), Variant.INT8: int8}

    latencies = cpu_latency_ms(
        {variant.value: model for variant, model in models.items()},
        task.input_shape,
        batch_sizes=(1, 64),
        repeats=config.latency_repeats,
    )
    metrics = {
        variant: {
            "accuracy": evaluate(model, x_test, y_test).accuracy,
            "size_bytes": float(size_bytes(model)),
            "parameters": float(parameter_count(model)),
            "latency_ms_batch1": latencies[variant.value][1],
            "latency_ms_batch64": latencies[variant.value][64],
        }
        for variant, model in models.items()
    }
    return Localized(task.name, config, global_accuracy, models, metrics)


def measure_variants(
    task: Task,
    global_model: nn.Module | Mapping[str, torch.Tensor],
    shard: Shard,
    config: LocalizationConfig | None = None,
) -> dict[str, Any]:
    """Localize and return only the table: size, parameters, CPU latency at batch 1 and 64
    (one thread, median) and test accuracy of fp32, pruned and int8, plus ratios to fp32."""
    return localize(task, global_model, shard, config).report()
