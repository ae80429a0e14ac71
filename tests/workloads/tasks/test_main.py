"""`python -m workloads.tasks`: prepare-data writes each region's shard to its own directory, or nothing."""

import json

import pytest

from workloads.tasks.__main__ import main
from workloads.tasks.base import Shard


def test_prepare_data_writes_each_region_to_its_own_directory(tmp_path, capsys):
    rc = main(["prepare-data", "--task", "digits", "--regions", "eu,us", "--out", str(tmp_path), "--seed", "1"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eu", "us"]
    for region in ("eu", "us"):
        shard = Shard.load(tmp_path / region)
        summary = json.loads((tmp_path / region / "shard.json").read_text())
        assert summary["region"] == region and summary["train_examples"] == len(shard.y_train)
        assert sum(summary["train_label_counts"]) == len(shard.y_train)
    assert f"{tmp_path / 'eu'}:" in capsys.readouterr().out


def test_prepare_data_names_a_bad_region_and_writes_nothing(tmp_path, capsys):
    rc = main(["prepare-data", "--regions", "eu,eu", "--out", str(tmp_path)])
    assert rc == 2
    assert "duplicate region names: eu" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_node_without_its_shard_is_told_to_prepare_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="run prepare-data"):
        Shard.load(tmp_path / "eu")
