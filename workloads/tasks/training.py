"""Generic train and evaluate for any task (a classifier: float input -> logits).

The trainer's ClientApp, localization and the benchmarks all train through these two
functions, so a user task only has to provide a model and its data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TrainResult:
    loss: float  # mean training loss over the last epoch (without the proximal term)
    examples: int
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    examples: int


def train(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    proximal_mu: float = 0.0,
    seed: int = 0,
) -> TrainResult:
    """Mini-batch SGD on (x, y). With `proximal_mu` > 0 the FedProx term
    (mu / 2) * ||w - w_start||^2 keeps the weights near where training started (the global
    model), which limits client drift on non-IID data (Li et al. 2018)."""
    if len(x) == 0:
        raise ValueError("no training examples")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels")
    started = time.perf_counter()
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    labels = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if proximal_mu > 0 else []
    velocity = [torch.zeros_like(p) for p in params]
    generator = torch.Generator().manual_seed(seed)
    model.train()
    epoch_loss = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for p in params:
                p.grad = None
            loss = F.cross_entropy(model(inputs[batch]), labels[batch])
            total += loss.item() * len(batch)
            if anchor:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
                loss = loss + proximal_mu / 2 * drift
            loss.backward()
            _sgd_step(params, velocity, lr, momentum)
        epoch_loss = total / len(inputs)
    return TrainResult(epoch_loss, len(inputs), time.perf_counter() - started)


@torch.no_grad()
def _sgd_step(params: list[torch.Tensor], velocity: list[torch.Tensor], lr: float, momentum: float) -> None:
    """SGD with momentum, as torch.optim.SGD computes it (v = m * v + g; w -= lr * v).
    Written out because constructing any torch.optim optimizer imports torch._dynamo, ~2 s
    in every fresh process, and Flower runs each train message in a fresh process."""
    for p, v in zip(params, velocity, strict=True):
        if p.grad is not None:
            v.mul_(momentum).add_(p.grad)
            p.sub_(v, alpha=lr)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512) -> Evaluation:
    """Mean cross-entropy and accuracy of `model` on (x, y)."""
    if len(x) == 0:
        raise ValueError("no evaluation examples")
    model.eval()
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    labels = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    loss_sum, correct = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        logits = model(inputs[start : start + batch_size])
        target = labels[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == target).sum())
    return Evaluation(loss_sum / len(inputs), correct / len(inputs), len(inputs))
