"""Local training and evaluation: accurate, deterministic per seed, FedProx's proximal term, bad data refused."""

import numpy as np
import pytest
import torch

from workloads.tasks.digits import DIGITS
from workloads.tasks.training import evaluate, train


@pytest.fixture(scope="module")
def shard():
    return DIGITS.partition(["only"], seed=0, alpha=1.0)["only"]


def test_training_makes_the_model_accurate(shard):
    torch.manual_seed(0)
    model = DIGITS.build_model()
    before = evaluate(model, shard.x_test, shard.y_test)
    result = train(model, shard.x_train, shard.y_train, epochs=3)
    after = evaluate(model, shard.x_test, shard.y_test)
    assert result.examples == len(shard.y_train) and result.seconds > 0
    assert after.accuracy > 0.9 > before.accuracy
    assert after.loss < before.loss and after.examples == len(shard.y_test)


def _distance_travelled(shard, proximal_mu):
    torch.manual_seed(0)
    model = DIGITS.build_model()
    start = [p.detach().clone() for p in model.parameters()]
    train(model, shard.x_train, shard.y_train, epochs=2, lr=0.1, proximal_mu=proximal_mu)
    return sum(float(((p.detach() - s) ** 2).sum()) for p, s in zip(model.parameters(), start, strict=True))


def test_the_proximal_term_keeps_weights_near_the_global_model(shard):
    assert _distance_travelled(shard, proximal_mu=1.0) < 0.7 * _distance_travelled(shard, 0.0)


def test_training_is_deterministic_for_a_seed(shard):
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = DIGITS.build_model()
        train(model, shard.x_train, shard.y_train, epochs=1, seed=7)
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_evaluate_counts_correct_predictions():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    result = evaluate(model, x, np.array([0, 1, 1, 1]))
    assert result.accuracy == 0.75


def test_empty_or_mismatched_data_is_refused():
    model = DIGITS.build_model()
    with pytest.raises(ValueError, match="no training examples"):
        train(model, np.zeros((0, 64), np.float32), np.zeros(0, np.int64), epochs=1)
    with pytest.raises(ValueError, match="3 inputs but 2 labels"):
        train(model, np.zeros((3, 64), np.float32), np.zeros(2, np.int64), epochs=1)
    with pytest.raises(ValueError, match="no evaluation examples"):
        evaluate(model, np.zeros((0, 64), np.float32), np.zeros(0, np.int64))


def test_the_hand_written_sgd_matches_torch_optim(shard):
    """training.py avoids torch.optim (it imports torch._dynamo, ~2 s per fresh process)."""
    torch.manual_seed(0)
    ours = DIGITS.build_model()
    reference = DIGITS.build_model()
    reference.load_state_dict(ours.state_dict())
    train(ours, shard.x_train[:64], shard.y_train[:64], epochs=1, batch_size=16, lr=0.1, momentum=0.9)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    x, y = torch.from_numpy(shard.x_train[:64]), torch.from_numpy(shard.y_train[:64])
    for start in range(0, 64, 16):
        batch = order[start : start + 16]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(reference(x[batch]), y[batch]).backward()
        optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)
