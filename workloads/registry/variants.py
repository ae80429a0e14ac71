"""How each variant is stored and rebuilt from `task.build_model()`.

A variant differs from the task's reference architecture in two ways only, both recorded in the
manifest's `architecture`:
- `resized_modules`: {module name: {dimension: width}} for Linear, Conv and BatchNorm modules
  whose widths were cut by structured pruning (e.g. {"net.0": {"out_features": 256}}).
- `int8_modules`: {module name: {"qscheme": ..., "axis": ...}} for Linear modules replaced by
  torch's dynamic int8 Linear. Their weights are stored as int8 tensors `<name>.weight` with
  `<name>.weight_scale` and `<name>.weight_zero_point`, so safetensors can hold them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

# torch 2.13 deprecates torch.ao.quantization in favour of torchao (not installed here), yet its
# dynamic int8 Linear is still the fastest measured CPU path (see workloads/localization/README).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import quantize_dynamic
    from torch.ao.quantization.qconfig import default_dynamic_qconfig, per_channel_dynamic_qconfig

_WIDTHS: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Linear: ("in_features", "out_features"),
    nn.Conv1d: ("in_channels", "out_channels"),
    nn.Conv2d: ("in_channels", "out_channels"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
}
_QSCHEMES = {
    "per_channel_affine": (torch.per_channel_affine, per_channel_dynamic_qconfig),
    "per_tensor_affine": (torch.per_tensor_affine, default_dynamic_qconfig),
}


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    # Deprecation noise from torch.ao on every call; the API is pinned with torch==2.13.0.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _width_names(module: nn.Module) -> tuple[str, ...] | None:
    if isinstance(module, DynamicInt8Linear):
        return _WIDTHS[nn.Linear]
    return next((names for kind, names in _WIDTHS.items() if type(module) is kind), None)


def resized(module: nn.Module, **widths: int) -> nn.Module:
    """A fresh (uninitialized) module like `module`, in the same train/eval mode, with some
    widths changed."""
    return _resized(module, **widths).train(module.training)


def _resized(module: nn.Module, **widths: int) -> nn.Module:
    names = _WIDTHS.get(type(module))
    if names is None or not set(widths) <= set(names):
        raise ValueError(f"cannot resize {type(module).__name__} by {sorted(widths)}")
    dims = [int(widths[name]) if name in widths else int(getattr(module, name)) for name in names]
    if isinstance(module, nn.Linear):
        return nn.Linear(*dims, bias=module.bias is not None)
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        if module.groups != 1:
            raise ValueError("cannot resize a grouped convolution")
        return type(module)(
            *dims,
            kernel_size=module.kernel_size,  # pyright: ignore[reportArgumentType]
            stride=module.stride,  # pyright: ignore[reportArgumentType]
            padding=module.padding,  # pyright: ignore[reportArgumentType]
            dilation=module.dilation,  # pyright: ignore[reportArgumentType]
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
        )
    assert isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d)
    return type(module)(
        *dims,
        eps=module.eps,
        momentum=module.momentum,
        affine=module.affine,
        track_running_stats=module.track_running_stats,
    )


def quantize_int8(model: nn.Module, per_channel: bool = True) -> nn.Module:
    """A copy of `model` whose Linear layers are dynamic int8 (weights int8, activations
    quantized on the fly), the CPU edge format."""
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with _quiet_quantization():
        return quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=False)


def describe(model: nn.Module, reference: nn.Module) -> dict[str, Any]:
    """The `architecture` entries that turn `reference` (task.build_model()) into `model`."""
    reference_modules = dict(reference.named_modules())
    resized_modules: dict[str, dict[str, int]] = {}
    int8_modules: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f"{parent}.") for parent in int8_modules):
            continue  # the packed-weights holder inside a dynamic int8 Linear
        original = reference_modules.get(name)
        if original is None:
            raise ValueError(f"module {name!r} is not part of the task's architecture")
        if isinstance(module, DynamicInt8Linear):
            if type(original) is not nn.Linear:
                raise ValueError(f"module {name!r} is int8 but {type(original).__name__} in the task")
            weight = module.weight()
            scheme = next(key for key, (qscheme, _) in _QSCHEMES.items() if weight.qscheme() == qscheme)
            int8_modules[name] = {"qscheme": scheme, "axis": 0}
        elif type(module) is not type(original):
            raise ValueError(
                f"module {name!r} is {type(module).__name__}, the task builds "
                f"{type(original).__name__}: only pruning and int8 quantization may change it"
            )
        names = _width_names(module)
        if names is not None:
            changed = {n: getattr(module, n) for n in names if getattr(module, n) != getattr(original, n)}
            if changed:
                resized_modules[name] = changed
    return {"resized_modules": resized_modules, "int8_modules": int8_modules}


def to_safetensors(model: nn.Module) -> bytes:
    """The model's state as safetensors bytes (int8 modules expanded into plain tensors)."""
    state = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    quantized = {name: m for name, m in model.named_modules() if isinstance(m, DynamicInt8Linear)}
    for key, value in state.items():
        # A dynamic int8 Linear's own state is a packed C++ object: stored through its parts below.
        if any(key.startswith(f"{name}.") for name in quantized):
            continue
        tensors[key] = value.detach().contiguous()
    for name, module in quantized.items():
        weight, bias = module.weight(), module.bias()
        tensors[f"{name}.weight"] = weight.int_repr().contiguous()
        if weight.qscheme() == torch.per_channel_affine:
            tensors[f"{name}.weight_scale"] = weight.q_per_channel_scales().float().contiguous()
            zero_points = weight.q_per_channel_zero_points()
        else:
            tensors[f"{name}.weight_scale"] = torch.tensor([weight.q_scale()], dtype=torch.float32)
            zero_points = torch.tensor([weight.q_zero_point()])
        tensors[f"{name}.weight_zero_point"] = zero_points.to(torch.int32).contiguous()
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    return save_safetensors(tensors)


def _quantized_weight(tensors: Mapping[str, torch.Tensor], name: str, qscheme: str) -> torch.Tensor:
    values = tensors[f"{name}.weight"].to(torch.float32)
    scale = tensors[f"{name}.weight_scale"].to(torch.float64)
    zero_point = tensors[f"{name}.weight_zero_point"].to(torch.int64)
    # Dequantized values lie exactly on the int8 grid, so quantizing them again with the same
    # scales gives back the stored integers bit for bit.
    with _quiet_quantization():
        if qscheme == "per_channel_affine":
            dequantized = (values - zero_point[:, None]) * scale[:, None].float()
            return torch.quantize_per_channel(dequantized, scale, zero_point, 0, torch.qint8)
        dequantized = (values - zero_point.item()) * scale.item()
        return torch.quantize_per_tensor(dequantized, scale.item(), int(zero_point.item()), torch.qint8)


def rebuild(reference: nn.Module, architecture: Mapping[str, Any], weights: bytes) -> nn.Module:
    """`reference` (a fresh task.build_model()) turned into the stored variant, weights loaded."""
    model = reference
    for name, widths in architecture.get("resized_modules", {}).items():
        model.set_submodule(name, resized(model.get_submodule(name), **widths))
    tensors = load_safetensors(weights)
    int8_modules: dict[str, dict[str, Any]] = dict(architecture.get("int8_modules", {}))
    int8_keys = {f"{n}.{part}" for n in int8_modules for part in ("weight", "weight_scale", "weight_zero_point")}
    float_state = {key: value for key, value in tensors.items() if key not in int8_keys}
    quantized_weights = {name: _quantized_weight(tensors, name, spec["qscheme"]) for name, spec in int8_modules.items()}
    for name, weight in quantized_weights.items():
        float_state[f"{name}.weight"] = weight.dequantize()
    # Strict: a tensor missing, left over or of the wrong shape is an error, not a silent default.
    model.load_state_dict(float_state, strict=True)
    if int8_modules:
        spec = {name: _QSCHEMES[entry["qscheme"]][1] for name, entry in int8_modules.items()}
        with _quiet_quantization():
            model = quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)
        for name, weight in quantized_weights.items():
            module = model.get_submodule(name)
            assert isinstance(module, DynamicInt8Linear)
            module.set_weight_bias(weight, module.bias())
    return model.eval()
