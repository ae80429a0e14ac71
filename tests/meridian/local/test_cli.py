"""`meridian local` says clearly what stops it, before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from meridian.local import cli


def test_a_missing_dependency_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "REQUIRED_MODULES", ("numpy", "no_such_module_for_meridian"))
    assert cli.main(["--out", str(tmp_path), "up", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "missing dependencies: no_such_module_for_meridian" in err and "make up" in err
    assert not (tmp_path / "state.json").exists()


def test_a_stack_with_cloud_regions_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--out", str(tmp_path), "up", "--stack", "dev"]) == 1
    assert "cloud regions (us-east-1, europe-west4)" in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()


def test_status_and_down_without_a_fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--out", str(tmp_path), "status"]) == 1
    assert "no local fleet is running" in capsys.readouterr().out
    assert cli.main(["--out", str(tmp_path), "down"]) == 0


def test_a_canary_drill_needs_a_running_fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--out", str(tmp_path), "canary", "bad"]) == 1
    assert "no local fleet is running" in capsys.readouterr().err
