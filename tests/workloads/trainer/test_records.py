import json

import torch
from safetensors.torch import load_file

from workloads.trainer.records import MODEL_FILE, global_evaluation, save_model


def test_global_accuracy_weighs_regions_by_their_test_examples():
    result = global_evaluation(
        {"eu": {"loss": 1.0, "accuracy": 0.5, "examples": 100}, "us": {"loss": 3.0, "accuracy": 1.0, "examples": 300}}
    )
    assert result == {"loss": 2.5, "accuracy": 0.875, "examples": 400, "evaluated_regions": ["eu", "us"]}


def test_no_evaluation_is_reported_as_none_not_zero():
    assert global_evaluation({})["accuracy"] is None


def test_the_saved_model_loads_back_and_is_described(tmp_path):
    model = torch.nn.Linear(3, 2)
    info = save_model(tmp_path, model.state_dict(), {"task": "digits", "round": 4})
    assert json.loads((tmp_path / "model.json").read_text()) == info
    loaded = load_file(str(tmp_path / MODEL_FILE))
    assert torch.equal(loaded["weight"], model.weight.detach())
    assert info["task"] == "digits" and info["round"] == 4 and info["parameters"] == 8
    assert len(info["sha256"]) == 64 and info["weights"] == MODEL_FILE
