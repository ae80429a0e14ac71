"""Size, parameter count and single-thread CPU latency of model variants.

Latency is measured the way an edge server runs: one thread, inference mode, one model called
again and again, median of many calls. The variants take turns in blocks of consecutive calls,
so a burst of load from other processes slows all of them alike instead of skewing one. The
first call of each block is not counted: it refills the CPU caches the other variants evicted
(an int8 MLP of 1M parameters fits in L2, its fp32 original does not; a server holds one).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from workloads.registry.variants import DynamicInt8Linear, to_safetensors

_BLOCK = 25  # consecutive timed calls of one model per turn


def size_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights file as published (model.safetensors)."""
    return len(to_safetensors(model))


def parameter_count(model: nn.Module) -> int:
    """Trainable values, counting the int8 weights of quantized Linear layers too."""
    count = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, DynamicInt8Linear):
            bias = module.bias()
            count += module.weight().numel() + (0 if bias is None else bias.numel())
    return count


@contextmanager
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cpu_latency_ms(
    models: Mapping[str, nn.Module],
    input_shape: Sequence[int],
    batch_sizes: Sequence[int] = (1, 64),
    repeats: int = 200,
    warmup: int = 20,
) -> dict[str, dict[int, float]]:
    """{model name: {batch size: median milliseconds per forward pass}} on one CPU thread
    (`repeats` timed calls per model and batch size, rounded up to whole blocks)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    generator = torch.Generator().manual_seed(0)
    latencies: dict[str, dict[int, float]] = {name: {} for name in models}
    with _single_thread(), torch.inference_mode():
        for batch in batch_sizes:
            x = torch.randn(batch, *input_shape, generator=generator)
            samples: dict[str, list[float]] = {name: [] for name in models}
            for model in models.values():
                model.eval()
                for _ in range(warmup):
                    model(x)
            for _ in range(math.ceil(repeats / _BLOCK)):
                for name, model in models.items():
                    model(x)
                    for _ in range(_BLOCK):
                        started = time.perf_counter()
                        model(x)
                        samples[name].append(time.perf_counter() - started)
            for name, values in samples.items():
                latencies[name][batch] = statistics.median(values) * 1000.0
    return latencies
