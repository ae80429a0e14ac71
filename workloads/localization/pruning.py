"""Structured pruning: remove whole neurons (Linear) or channels (Conv) so the model really
shrinks and runs faster on CPU (masking weights to zero, as torch.nn.utils.prune does, gains
nothing there).

Which units can go is read from the model's graph (torch.fx), so any task's model works as long
as a layer's output reaches the next Linear/Conv only through per-unit operations (activations,
dropout, pooling, BatchNorm, a flatten). Outputs that feed a residual add, a concatenation or
the model's output are left alone. Removing unit i deletes row i of the producer, entry i of
any BatchNorm in between, and the matching input columns of every consumer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from workloads.registry.variants import resized

_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PER_UNIT_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.Dropout,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)
_PER_UNIT_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.gelu,
    F.silu,
    torch.tanh,
    torch.sigmoid,
    F.leaky_relu,
    F.elu,
    F.dropout,
    F.max_pool1d,
    F.max_pool2d,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    torch.max_pool1d,
    torch.max_pool2d,
    torch.avg_pool1d,
}
_PER_UNIT_METHODS = {"relu", "tanh", "sigmoid"}


@dataclass
class PruneGroup:
    """One prunable layer: its output units, and every module whose shape depends on them."""

    producer: str
    norms: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (name, inputs per unit)


def _out_dim(module: nn.Module) -> str:
    return "out_features" if isinstance(module, nn.Linear) else "out_channels"


def _in_dim(module: nn.Module) -> str:
    return "in_features" if isinstance(module, nn.Linear) else "in_channels"


def _is_flatten_from_dim_1(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        module = modules[str(node.target)]
        return isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
    if (node.op, node.target) in (("call_function", torch.flatten), ("call_method", "flatten")):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return bool(start == 1 and end == -1)
    return False


def _only_tensor_input(node: fx.Node, source: fx.Node) -> bool:
    others = [a for a in (*node.args[1:], *node.kwargs.values()) if isinstance(a, fx.Node)]
    return bool(node.args) and node.args[0] is source and not others


def _follow(producer: fx.Node, modules: dict[str, nn.Module], calls: dict[str, int]) -> PruneGroup | None:
    """The group of `producer` if every path from its output is prunable, else None."""
    group = PruneGroup(str(producer.target))
    producer_module = modules[group.producer]
    width = getattr(producer_module, _out_dim(producer_module))
    pending = [(producer, False)]
    while pending:
        node, flattened = pending.pop()
        for user in node.users:
            module = modules.get(str(user.target)) if user.op == "call_module" else None
            if module is not None and calls[str(user.target)] > 1:
                return None  # a module applied twice cannot take two different widths
            if isinstance(module, _PRODUCERS):
                if flattened or isinstance(producer_module, nn.Linear):
                    if not isinstance(module, nn.Linear) or module.in_features % width:
                        return None
                    group.consumers.append((str(user.target), module.in_features // width))
                elif type(module) is type(producer_module) and getattr(module, "groups", 1) == 1:
                    group.consumers.append((str(user.target), 1))
                else:
                    return None
            elif isinstance(module, _NORMS) and not flattened:
                group.norms.append(str(user.target))
                pending.append((user, flattened))
            elif _is_flatten_from_dim_1(user, modules) and _only_tensor_input(user, node):
                pending.append((user, True))
            elif (
                isinstance(module, _PER_UNIT_MODULES)
                or (user.op == "call_function" and user.target in _PER_UNIT_FUNCTIONS)
                or (user.op == "call_method" and user.target in _PER_UNIT_METHODS)
            ) and (module is not None or _only_tensor_input(user, node)):
                pending.append((user, flattened))
            else:
                return None
    return group if group.consumers else None


def find_prunable(model: nn.Module) -> list[PruneGroup]:
    """Every layer of `model` whose output units can be removed."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as error:  # fx raises many kinds on data-dependent control flow
        raise ValueError(f"cannot trace the model to find prunable layers: {error}") from error
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    groups = []
    for node in graph.nodes:
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if isinstance(module, _PRODUCERS) and getattr(module, "groups", 1) == 1 and calls[str(node.target)] == 1:
            group = _follow(node, modules, calls)
            if group is not None:
                groups.append(group)
    return groups


def _weight(model: nn.Module, name: str) -> torch.Tensor:
    weight = model.get_submodule(name).weight
    assert isinstance(weight, torch.Tensor)
    return weight.detach()


def _unit_importance(model: nn.Module, group: PruneGroup) -> torch.Tensor:
    """Magnitude of what flows through each unit: the norm of its incoming weights times the
    norm of its outgoing weights, scaled by any BatchNorm gain on the way."""
    incoming = _weight(model, group.producer).flatten(1).norm(dim=1)
    outgoing = torch.zeros_like(incoming)
    for name, per_unit in group.consumers:
        weight = _weight(model, name)
        columns = weight.transpose(0, 1).reshape(len(incoming), per_unit, weight.shape[0], -1)
        outgoing += columns.pow(2).sum(dim=(1, 2, 3))
    importance = incoming * outgoing.sqrt()
    for name in group.norms:
        norm = model.get_submodule(name)
        assert isinstance(norm, _NORMS)
        if norm.affine and norm.running_var is not None:
            importance *= norm.weight.detach().abs() / torch.sqrt(norm.running_var + norm.eps)
    return importance


def _replace(model: nn.Module, name: str, widths: dict[str, int], tensors: dict[str, torch.Tensor]) -> None:
    old = model.get_submodule(name)
    new = resized(old, **widths)
    with torch.no_grad():
        for key, value in old.state_dict().items():
            target = new.state_dict()[key]  # shares storage with the module
            target.copy_(tensors.get(key, value))
    model.set_submodule(name, new)


def _prune_group(model: nn.Module, group: PruneGroup, keep: torch.Tensor) -> None:
    producer = model.get_submodule(group.producer)
    kept = {key: value[keep] for key, value in producer.state_dict().items()}
    _replace(model, group.producer, {_out_dim(producer): len(keep)}, kept)
    for name in group.norms:
        norm = model.get_submodule(name)
        state = {key: value[keep] for key, value in norm.state_dict().items() if value.dim() == 1}
        _replace(model, name, {"num_features": len(keep)}, state)
    for name, per_unit in group.consumers:
        consumer = model.get_submodule(name)
        columns = (keep[:, None] * per_unit + torch.arange(per_unit)).flatten()
        weight = _weight(model, name)[:, columns]
        _replace(model, name, {_in_dim(consumer): len(columns)}, {"weight": weight})


def prune_structured(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of `model` with `sparsity` (0 <= s < 1) of the units of every prunable layer
    removed, least important first. Fine-tune it afterwards to recover accuracy."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} must be in [0, 1)")
    pruned = copy.deepcopy(model).cpu().eval()
    groups = find_prunable(pruned)
    if not groups:
        raise ValueError(
            "no prunable layer found: structured pruning needs a Linear or Conv whose output "
            "reaches another Linear/Conv only through per-unit layers (activation, norm, pooling)"
        )
    for group in groups:
        importance = _unit_importance(pruned, group)
        count = max(1, round(len(importance) * (1.0 - sparsity)))
        keep = importance.topk(count).indices.sort().values
        _prune_group(pruned, group, keep)
    return pruned
