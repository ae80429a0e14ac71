"""The model both built-in tasks train: an MLP with two hidden layers of one width.

Its layer order is part of every stored artifact (state-dict keys `0`, `2`, `4`; pruned widths
per module), so the tasks share this one definition rather than each spelling it out.
"""

from __future__ import annotations

import torch


def two_hidden_layer_mlp(inputs: int, hidden: int, classes: int) -> torch.nn.Sequential:
    """inputs -> hidden -> hidden -> classes logits, ReLU after each hidden layer."""
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, classes),
    )
