"""Localization: per-region fine-tuning, structured pruning and int8 quantization (README.md)."""

from workloads.localization.localize import LocalizationConfig, Localized, localize, measure_variants
from workloads.localization.pruning import find_prunable, prune_structured

__all__ = [
    "LocalizationConfig",
    "Localized",
    "find_prunable",
    "localize",
    "measure_variants",
    "prune_structured",
]
