"""The benchmark's digits MLP rebuilt from its saved weights, for the peer servers (KServe,
MLServer) that bench/serving.py runs in their own venvs: they cannot import the workloads'
registry, so each loads the same `state_dict` through this one module and computes the same
softmax our server answers with."""

from __future__ import annotations

import numpy as np
import torch


def load_digits_mlp(weights: str) -> torch.nn.Module:
    """The Linear-ReLU-Linear-ReLU-Linear stack `weights` was saved from, in eval mode, on one
    thread (each server is pinned to one core)."""
    torch.set_num_threads(1)
    state = torch.load(weights, weights_only=True)
    shapes = [state[f"{i}.weight"].shape for i in (0, 2, 4)]
    model = torch.nn.Sequential(
        torch.nn.Linear(shapes[0][1], shapes[0][0]),
        torch.nn.ReLU(),
        torch.nn.Linear(shapes[1][1], shapes[1][0]),
        torch.nn.ReLU(),
        torch.nn.Linear(shapes[2][1], shapes[2][0]),
    )
    model.load_state_dict(state)
    return model.eval()


def probabilities(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Softmax over the classes for each row of `x` (rows, 64)."""
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
