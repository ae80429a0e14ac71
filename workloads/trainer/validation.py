"""Every decoded update is checked before aggregation; a bad one is rejected with a reason and
the round goes on with the others.

Checks, in order: the update has exactly the global model's tensors, shapes and float dtype;
every value is finite; and the L2 norm of its delta from the global model is not far outside
this round's distribution. "Far" is a robust z-score (Iglewicz and Hoaglin's modified z:
0.6745 * (norm - median) / MAD) above `z_max`; with few regions the MAD can be tiny, so it is
floored at a fraction of the median norm, which keeps honest but unusual regions (non-IID
data moves weights more in some regions) from being thrown out. Two or fewer updates give no
distribution to judge by, so the norm check needs at least three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.trainer.compression import Tensors

MODIFIED_Z_FACTOR = 0.6745  # makes the MAD-based z comparable to a normal z-score
MAD_FLOOR_FRACTION = 0.25  # MAD is never taken as less than this share of the median norm
MIN_UPDATES_FOR_NORM_CHECK = 3


@dataclass(frozen=True)
class Rejection:
    source: str  # the region (or node) that sent the update
    reason: str


def structural_problem(update: Tensors, reference: Tensors) -> str | None:
    """Why `update` cannot be aggregated with the global model, or None."""
    missing, extra = sorted(set(reference) - set(update)), sorted(set(update) - set(reference))
    if missing:
        return f"missing tensors {missing[:3]}"
    if extra:
        return f"unexpected tensors {extra[:3]}"
    for key, ref in reference.items():
        value = update[key]
        if value.shape != ref.shape:
            return f"tensor {key!r} has shape {value.shape}, the global model's is {ref.shape}"
        if value.dtype != ref.dtype:
            return f"tensor {key!r} has dtype {value.dtype}, the global model's is {ref.dtype}"
    for key, value in update.items():
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        if bad:
            return f"{bad} non-finite values (NaN/inf) in tensor {key!r}"
    return None


def delta_norm(update: Tensors, reference: Tensors) -> float:
    return float(np.sqrt(sum(float(np.sum((update[k].astype(np.float64) - ref) ** 2)) for k, ref in reference.items())))


def norm_outliers(norms: dict[str, float], z_max: float) -> dict[str, str]:
    """Sources whose update norm is a robust outlier this round, with the reason."""
    if len(norms) < MIN_UPDATES_FOR_NORM_CHECK:
        return {}
    values = np.array(list(norms.values()))
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    spread = max(mad, MAD_FLOOR_FRACTION * median, np.finfo(np.float64).tiny)
    outliers = {}
    for source, norm in norms.items():
        z = MODIFIED_Z_FACTOR * (norm - median) / spread
        if abs(z) > z_max:
            outliers[source] = (
                f"update norm {norm:.4g} is {z:+.1f} robust z from this round's median {median:.4g} (limit {z_max:g})"
            )
    return outliers


def validate_updates(
    updates: dict[str, Tensors], reference: Tensors, z_max: float
) -> tuple[list[str], list[Rejection]]:
    """(accepted sources, rejections) for this round's decoded updates, keyed by source."""
    rejections = []
    well_formed: dict[str, Tensors] = {}
    for source, update in updates.items():
        problem = structural_problem(update, reference)
        if problem:
            rejections.append(Rejection(source, problem))
        else:
            well_formed[source] = update
    norms = {source: delta_norm(update, reference) for source, update in well_formed.items()}
    outliers = norm_outliers(norms, z_max)
    rejections += [Rejection(source, reason) for source, reason in outliers.items()]
    accepted = [source for source in well_formed if source not in outliers]
    return accepted, rejections
