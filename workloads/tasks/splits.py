"""Deterministic ways of dealing examples out to regions (the non-IID part of a task)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A region with fewer examples than this cannot train or be evaluated meaningfully; the split
# is redrawn until every region reaches it.
MIN_EXAMPLES_PER_REGION = 10
_MAX_DRAWS = 1000


def dirichlet_proportions(num_regions: int, num_groups: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Per-group shares of each region, shape (num_groups, num_regions), rows summing to 1.

    Smaller `alpha` means more skew: at alpha=0.1 most groups land almost entirely in one
    region, at alpha=100 every region gets nearly the same share of every group.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return rng.dirichlet(np.full(num_regions, alpha), size=num_groups)


def split_by_proportions(labels: np.ndarray, proportions: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of `labels` for each region: every class c is cut by `proportions[c]`."""
    num_regions = proportions.shape[1]
    parts: list[list[np.ndarray]] = [[] for _ in range(num_regions)]
    for cls in range(proportions.shape[0]):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cuts = (np.cumsum(proportions[cls])[:-1] * len(members)).round().astype(int)
        for region, chunk in enumerate(np.split(members, cuts)):
            parts[region].append(chunk)
    return [np.sort(np.concatenate(chunks)) for chunks in parts]


def dirichlet_label_skew(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_regions: int,
    num_classes: int,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train and test indices per region with the same label skew on both sides, so a region's
    test split measures the model on the distribution that region actually sees."""
    for _ in range(_MAX_DRAWS):
        proportions = dirichlet_proportions(num_regions, num_classes, alpha, rng)
        train = split_by_proportions(train_labels, proportions, rng)
        test = split_by_proportions(test_labels, proportions, rng)
        if min(map(len, train)) >= MIN_EXAMPLES_PER_REGION and min(map(len, test)) >= 1:
            return train, test
    raise ValueError(
        f"could not give each of {num_regions} regions {MIN_EXAMPLES_PER_REGION} training "
        f"examples at alpha={alpha}: raise alpha or use fewer regions"
    )


def check_regions(regions: Sequence[str]) -> None:
    """Region names become directory names: refuse anything that is not a plain, unique name."""
    if not regions:
        raise ValueError("at least one region is needed")
    for region in regions:
        if not region or region in (".", "..") or "/" in region or "\\" in region:
            raise ValueError(f"region name {region!r} is not a plain directory name")
    duplicates = sorted({r for r in regions if list(regions).count(r) > 1})
    if duplicates:
        raise ValueError(f"duplicate region names: {', '.join(duplicates)}")
