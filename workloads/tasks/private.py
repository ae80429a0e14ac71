"""DP-SGD for any task: the same training as training.py, with per-example gradients clipped to
`max_grad_norm` and Gaussian noise added by Opacus (Abadi et al. 2016), batches drawn by
Poisson sampling (each example joins a batch with probability q = 1 / batches-per-epoch), so
the accountant's subsampled-Gaussian analysis applies.

Separate from training.py: Opacus (and torch.optim, which it needs) takes ~1.5 s to import,
and only private runs pay it. The privacy bookkeeping (budget, noise calibration, accountant
state across rounds) is the caller's: workloads/trainer/privacy.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from opacus.grad_sample import GradSampleModule
from opacus.utils.module_utils import trainable_modules
from opacus.validators import ModuleValidator
from torch.utils.data import DataLoader, TensorDataset

from workloads.tasks.training import TrainResult

ACCOUNTANT = "rdp"  # Opacus's Renyi-DP accountant (Mironov 2017): the calibration and the spend use it
# The RDP orders tried for the tightest ε: Opacus's defaults (up to 63) extended to 255, since at
# ε of 8 and more with few steps the best order is past 63 (Opacus warns so): a tighter bound, the
# same guarantee. Calibration and spend use the same orders.
ALPHAS: list[float] = [1 + x / 10.0 for x in range(1, 100)] + [float(a) for a in range(12, 256)]

# One accountant entry: (noise multiplier, sample rate, steps), as Opacus's RDPAccountant keeps them.
History = list[tuple[float, float, int]]


class UnsupportedModel(ValueError):
    """A model Opacus cannot train with per-example gradients; the message names the layers."""


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return max(1, math.ceil(examples / batch_size))


def sample_rate(examples: int, batch_size: int) -> float:
    """Poisson sampling rate: one expected batch of `batch_size` per 1/q steps (Opacus's own choice)."""
    return 1.0 / steps_per_epoch(examples, batch_size)


def check_model(model: torch.nn.Module) -> None:
    """UnsupportedModel naming every layer Opacus cannot give per-example gradients for
    (BatchNorm mixes examples of a batch; some layers need Opacus's own replacement)."""
    problems: list[str] = []
    for name, module in trainable_modules(model):
        validator = ModuleValidator.VALIDATORS.get(type(module))
        errors = validator(module) if validator else []
        problems += [f"layer {name!r} ({type(module).__name__}): {str(error).split('. ')[0]}" for error in errors]
    if not problems:
        try:
            GradSampleModule(model).remove_hooks()
        except (NotImplementedError, ValueError) as err:
            problems.append(str(err))
    if problems:
        raise UnsupportedModel(
            "Opacus cannot train this model with DP-SGD: "
            + "; ".join(problems)
            + " (replace the layer, e.g. BatchNorm with GroupNorm: opacus.validators.ModuleValidator.fix)"
        )


def epsilon(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """The ε spent by these steps at δ, by the RDP accountant (0 with no steps)."""
    from opacus.accountants import RDPAccountant

    if not history:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return float(accountant.get_epsilon(delta, alphas=ALPHAS))


@dataclass(frozen=True)
class PrivateTrainResult(TrainResult):
    history: History  # the accountant's history after this training (the input's plus this run's steps)


def train_private(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    noise_multiplier: float,
    max_grad_norm: float,
    history: History,
    momentum: float = 0.9,
    proximal_mu: float = 0.0,
    seed: int = 0,
) -> PrivateTrainResult:
    """DP-SGD on (x, y) for `epochs` (in expectation: Poisson batches), continuing `history`.
    FedProx's proximal term depends on the weights only, not the data: it is applied as its
    own step after each private one, at no privacy cost."""
    if len(x) == 0:
        raise ValueError("no training examples")
    check_model(model)
    started = time.perf_counter()
    torch.manual_seed(seed)
    dataset = TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    engine = PrivacyEngine(accountant=ACCOUNTANT)
    engine.accountant.history = list(history)
    # The default hooks mode returns (GradSampleModule, DPOptimizer, DPDataLoader).
    wrapped = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        poisson_sampling=True,
    )
    private_model, private_optimizer, private_loader = wrapped[0], wrapped[1], wrapped[-1]
    assert isinstance(private_model, GradSampleModule) and isinstance(private_loader, DataLoader)
    private_model.train()
    epoch_loss = 0.0
    for _ in range(epochs):
        total, seen = 0.0, 0
        for inputs, labels in private_loader:
            private_optimizer.zero_grad()
            # A mean that is 0, not NaN, on an empty Poisson batch: that step still adds noise
            # and still counts in the accountant.
            loss = F.cross_entropy(private_model(inputs), labels, reduction="sum") / max(len(inputs), 1)
            loss.backward()
            private_optimizer.step()
            total, seen = total + loss.item() * len(inputs), seen + len(inputs)
            if anchor:
                with torch.no_grad():
                    for p, a in zip(model.parameters(), anchor, strict=True):
                        p.sub_(p - a, alpha=lr * proximal_mu)
        epoch_loss = total / max(seen, 1)
    private_model.remove_hooks()
    steps: History = [(float(s), float(q), int(n)) for s, q, n in engine.accountant.history]
    return PrivateTrainResult(epoch_loss, len(x), time.perf_counter() - started, steps)
