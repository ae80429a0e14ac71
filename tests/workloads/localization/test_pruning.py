"""Structured pruning removes whole neurons and channels, keeps the model's function when it
removes nothing that matters, and refuses models whose units it cannot remove safely."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workloads.localization.pruning import find_prunable, prune_structured
from workloads.registry.variants import describe, rebuild, to_safetensors


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 96), nn.GELU(), nn.Linear(96, 10)).eval()


class SmallCnn(nn.Module):
    """Conv-BN-ReLU-pool, conv, flatten, two Linear layers: every kind of unit dependency."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.norm(self.conv1(x))), 2)
        return self.head(torch.relu(self.conv2(x)))


def small_cnn() -> SmallCnn:
    torch.manual_seed(0)
    model = SmallCnn()
    model.norm.running_mean.uniform_(-0.5, 0.5)  # non-trivial statistics, so slicing them matters
    model.norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def outputs(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.randn(32, *shape, generator=torch.Generator().manual_seed(1)))


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_an_mlp_loses_half_of_every_hidden_layer() -> None:
    pruned = prune_structured(mlp(), sparsity=0.5)
    widths = [(m.in_features, m.out_features) for m in pruned.modules() if isinstance(m, nn.Linear)]
    assert widths == [(64, 64), (64, 48), (48, 10)]
    assert parameters(pruned) < parameters(mlp()) / 2.5


def test_pruning_nothing_keeps_the_function() -> None:
    for model, shape in ((mlp(), (64,)), (small_cnn(), (1, 8, 8))):
        assert torch.equal(outputs(prune_structured(model, 0.0), shape), outputs(model, shape))


def test_units_that_carry_nothing_go_first_and_the_outputs_do_not_change() -> None:
    model = mlp()
    with torch.no_grad():  # half of the neurons of both hidden layers output 0 (ReLU(0), GELU(0))
        for layer in (model[0], model[2]):
            layer.weight[::2] = 0.0
            layer.bias[::2] = 0.0
    pruned = prune_structured(model, sparsity=0.5)
    assert (pruned[0].out_features, pruned[2].out_features) == (64, 48)
    assert torch.equal(pruned[0].weight, model[0].weight[1::2])
    assert torch.equal(pruned[2].weight, model[2].weight[1::2, 1::2])
    assert torch.allclose(outputs(pruned, (64,)), outputs(model, (64,)), atol=1e-6)


def test_conv_channels_are_cut_through_batchnorm_pooling_and_flatten() -> None:
    model = small_cnn()
    groups = {g.producer: g for g in find_prunable(model)}
    assert set(groups) == {"conv1", "conv2", "head.1"}  # head.4 is the model's output
    assert groups["conv1"].norms == ["norm"] and groups["conv1"].consumers == [("conv2", 1)]
    assert groups["conv2"].consumers == [("head.1", 4)]  # each channel is 2x2 flattened features

    pruned = prune_structured(model, sparsity=0.5)

    assert (pruned.conv1.out_channels, pruned.norm.num_features, pruned.conv2.in_channels) == (4, 4, 4)
    assert (pruned.conv2.out_channels, pruned.head[1].in_features, pruned.head[1].out_features) == (8, 32, 16)
    assert outputs(pruned, (1, 8, 8)).shape == (32, 10)


def test_the_loader_rebuilds_pruned_conv_models_from_the_manifest_description() -> None:
    pruned = prune_structured(small_cnn(), sparsity=0.25)
    architecture = describe(pruned, SmallCnn())
    assert architecture["resized_modules"]["norm"] == {"num_features": 6}

    rebuilt = rebuild(SmallCnn(), architecture, to_safetensors(pruned))

    assert torch.equal(outputs(rebuilt, (1, 8, 8)), outputs(pruned, (1, 8, 8)))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(16, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + torch.relu(self.inner(x)))


def test_a_layer_feeding_a_residual_add_is_left_alone() -> None:
    assert find_prunable(Residual()) == []
    with pytest.raises(ValueError, match="no prunable layer found"):
        prune_structured(Residual(), 0.5)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x) if x.sum() > 0 else x


def test_an_untraceable_model_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="cannot trace the model to find prunable layers"):
        prune_structured(DataDependent(), 0.5)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_must_leave_something(sparsity: float) -> None:
    with pytest.raises(ValueError, match=r"sparsity .* must be in \[0, 1\)"):
        prune_structured(mlp(), sparsity)


def test_the_original_model_is_not_modified() -> None:
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_structured(model, 0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
