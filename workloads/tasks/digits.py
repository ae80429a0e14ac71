"""`digits`: scikit-learn's bundled 8x8 handwritten digits, split across regions by label skew.

1797 images ship inside scikit-learn, so the task needs no download. A quarter is held out
for testing (stratified, seeded) before the regions are dealt their shares, so the union of
the regional test splits is one fixed global test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from workloads.tasks.base import Shard
from workloads.tasks.mlp import two_hidden_layer_mlp
from workloads.tasks.splits import check_regions, dirichlet_label_skew

_TEST_FRACTION = 0.25
_PIXEL_MAX = 16.0  # load_digits pixels are integers 0..16


@dataclass(frozen=True)
class DigitsTask:
    """An MLP over the 64 pixels; `hidden` sets the width of its two hidden layers
    (128: ~27k parameters; 1024: ~1.1M parameters, for the compression benchmark)."""

    name: str = "digits"
    hidden: int = 128
    input_shape: tuple[int, ...] = (64,)
    num_classes: int = 10

    def build_model(self) -> torch.nn.Module:
        return two_hidden_layer_mlp(self.input_shape[0], self.hidden, self.num_classes)

    def partition(self, regions: Sequence[str], seed: int, alpha: float) -> dict[str, Shard]:
        # Imported here: nodes only build models, and scikit-learn takes ~1 s to import.
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        check_regions(regions)
        images, labels = load_digits(return_X_y=True)
        x = (images / _PIXEL_MAX).astype(np.float32)
        y = labels.astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=_TEST_FRACTION, stratify=y, random_state=seed
        )
        rng = np.random.default_rng(seed)
        train_parts, test_parts = dirichlet_label_skew(
            np.asarray(y_train), np.asarray(y_test), len(regions), self.num_classes, alpha, rng
        )
        return {
            region: Shard(x_train[tr], y_train[tr], x_test[te], y_test[te])
            for region, tr, te in zip(regions, train_parts, test_parts, strict=True)
        }


DIGITS = DigitsTask()
DIGITS_LARGE = DigitsTask(name="digits-large", hidden=1024)
