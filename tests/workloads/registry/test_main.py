"""The registry CLI: `verify` says whether an artifact can be trusted; `serve` is the local CDN."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from torch import nn

from workloads.registry import ArtifactId, Variant, publish
from workloads.registry.__main__ import main
from workloads.tasks import Task

FP32 = ArtifactId("meridian", "1", "eu-west-1", Variant.FP32)


@pytest.fixture
def registry(variants: dict[Variant, nn.Module], digits: Task, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    publish(
        variants[Variant.FP32], digits, f"file://{tmp_path / 'registry'}", keys[0], artifact=FP32, parent_version="1"
    )
    return tmp_path / "registry"


def verify(registry: Path, public_key: Path, dest: Path) -> int:
    return main([
        "verify", "--store", f"file://{registry}", "--trusted-key", str(public_key), "--model", "meridian",
        "--version", "1", "--region", "eu-west-1", "--variant", "fp32", "--dest", str(dest),
    ])  # fmt: skip


def test_verify_accepts_a_good_artifact_and_refuses_a_tampered_one(
    registry: Path, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(registry, keys[1], tmp_path / "ok") == 0
    assert '"verified": "meridian/1/eu-west-1/fp32"' in capsys.readouterr().out

    (registry / FP32.path / "model.safetensors").write_bytes(b"tampered")
    assert verify(registry, keys[1], tmp_path / "tampered") == 1
    assert "model.safetensors: 8 bytes, the manifest says" in capsys.readouterr().err


def test_serve_publishes_a_registry_directory_over_http(registry: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "workloads.registry", "serve", "--root", str(registry), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" at ")[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/meridian/latest/eu-west-1/fp32.json", timeout=10)
        assert response.json() == {"version": "1"}
    finally:
        process.terminate()
        process.wait(timeout=10)
