"""`meridian monitoring generate`: monitoring/ is exactly what the definition renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from meridian.monitoring.cli import ROOT, drift, generated, main, write


def test_the_checked_in_files_are_what_make_rules_writes() -> None:
    drifted = drift(ROOT)
    assert not drifted, f"run `make rules`: these files differ from meridian/monitoring/: {drifted}"


def test_check_names_an_edited_a_missing_and_a_stale_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert drift(tmp_path) == []
    (tmp_path / "monitoring/rules/serving.yaml").write_text("groups: []\n")
    (tmp_path / "monitoring/dashboards/meridian-edge.json").unlink()
    (tmp_path / "monitoring/tests/old.yaml").write_text("tests: []\n")
    named = ["monitoring/dashboards/meridian-edge.json", "monitoring/rules/serving.yaml", "monitoring/tests/old.yaml"]
    assert drift(tmp_path) == named
    assert write(tmp_path) == named  # generate repairs exactly those
    assert drift(tmp_path) == []
    assert not (tmp_path / "monitoring/tests/old.yaml").exists()


def test_check_fails_naming_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(tmp_path)
    (tmp_path / "monitoring/RUNBOOK.md").write_text("# edited by hand\n")
    monkeypatch.setattr("meridian.monitoring.cli.ROOT", tmp_path)
    assert main(["generate", "--check"]) == 1
    assert "monitoring/RUNBOOK.md: differs" in capsys.readouterr().out


def test_every_generated_file_lives_under_monitoring() -> None:
    assert all(path.startswith("monitoring/") for path in generated())
