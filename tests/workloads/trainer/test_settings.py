"""The trainer's run config: the app's defaults are complete and typed; a bad value names its key."""

import tomllib
from pathlib import Path

import pytest

from workloads.trainer.settings import SettingsError, Strategy, TrainerSettings

APP_PYPROJECT = Path(__file__).parents[3] / "workloads" / "trainer" / "pyproject.toml"


def test_the_apps_default_run_config_is_valid_and_complete():
    defaults = tomllib.loads(APP_PYPROJECT.read_text())["tool"]["flwr"]["app"]["config"]
    settings = TrainerSettings.from_run_config(defaults)
    assert settings == TrainerSettings()  # pyproject and code agree on every default


def test_values_are_typed():
    settings = TrainerSettings.from_run_config({"strategy": "multikrum", "rounds": 3, "learning-rate": 1})
    assert settings.strategy is Strategy.MULTIKRUM and settings.rounds == 3 and settings.learning_rate == 1.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strategy": "fedsgd"}, "strategy='fedsgd' is not one of: fedavg, fedprox"),
        ({"compression": "zip"}, "compression='zip' is not one of: none, fp16, int8, topk"),
        ({"rounds": "3"}, "rounds='3' must be a int"),
        ({"rounds": 0}, "out of range: rounds=0"),
        ({"topk-fraction": 1.5}, "topk-fraction=1.5"),
        ({"trim-fraction": 0.5}, "trim-fraction=0.5"),
        ({"round-timeout": 0.0}, "round-timeout=0.0"),
        ({"roundz": 3}, "unknown run config keys: roundz"),
        ({"downlink": "delta"}, "downlink='delta' is not one of: full, topk"),
        ({"downlink-topk-fraction": 0.0}, "downlink-topk-fraction=0.0"),
        ({"topk-value-bits": 2}, "topk-value-bits=2"),
        ({"topk-index-coding": "huffman"}, "topk-index-coding=huffman"),
        ({"downlink": "topk", "compression": "none"}, "downlink=topk needs an uplink that sends deltas"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(config, message):
    with pytest.raises(SettingsError, match=message):
        TrainerSettings.from_run_config(config)
