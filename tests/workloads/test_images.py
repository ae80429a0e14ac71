"""Each serving image's entrypoint starts from a clean venv built from that image's pinned
requirements file alone, with only the files its Dockerfile copies (no Docker engine here, so
this is the closest check of the image's contents).

`pip install --no-deps` then `pip check` proves the requirements file pins its whole closure;
the server then starts for real on a free port, loads a signed artifact and answers V2 health
and inference requests."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.workloads.serving.support import (
    MODEL,
    digits,
    free_port,
    infer_body,
    make_registry,
    server_env,
    server_process,
)
from workloads import contract
from workloads.registry import Variant

ROOT = Path(__file__).resolve().parents[2]
PYTHON = shutil.which("python3.11") or sys.executable
COPY = re.compile(r"^COPY (?!--from)(.+) (/app/\S*)$", re.MULTILINE)


def image_tree(image: str, dest: Path) -> Path:
    """The files the image's Dockerfile copies into /app, laid out under `dest`."""
    dockerfile = (ROOT / "workloads" / image / "Dockerfile").read_text()
    for sources, target in COPY.findall(dockerfile):
        to = dest / target.removeprefix("/app/")
        for source in sources.split():
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(
                    path, to / path.name if target.endswith("/") else to, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                to.mkdir(parents=True, exist_ok=True) if target.endswith("/") else to.parent.mkdir(
                    parents=True, exist_ok=True
                )
                shutil.copy(path, to / path.name if target.endswith("/") else to)
    return dest


def clean_venv(image: str, dest: Path) -> Path:
    subprocess.run([PYTHON, "-m", "venv", str(dest)], check=True)
    pip = [str(dest / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    requirements = ROOT / "workloads" / image / "requirements.txt"
    subprocess.run([*pip, "install", "--no-deps", "-r", str(requirements)], check=True, timeout=900)
    check = subprocess.run([*pip[:-1], "check"], check=False, capture_output=True, text=True)
    assert check.returncode == 0, f"{requirements} misses pins:\n{check.stdout}"
    return dest / "bin" / "python"


@pytest.mark.slow
@pytest.mark.parametrize(("image", "variant"), [("server", Variant.FP32), ("edge", Variant.INT8)])
def test_entrypoint_starts_from_a_clean_venv_of_the_image_requirements(
    image: str, variant: Variant, tmp_path: Path
) -> None:
    registry = make_registry(tmp_path, {"v1": 1}, [variant])
    python = clean_venv(image, tmp_path / "venv")
    app_dir = image_tree(image, tmp_path / "app")
    env = server_env(
        registry, free_port(), tmp_path / "cache", **{contract.ENV_UPSTREAM_URL: f"http://127.0.0.1:{free_port()}"}
    )
    help_text = subprocess.run(
        [str(python), "-m", f"workloads.{image}", "--help"],
        check=False,
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_text.returncode == 0 and contract.ENV_REGISTRY_URL in help_text.stdout, help_text.stderr
    if image == "server":  # the region's canary controller runs from the server image
        canary = subprocess.run(
            [str(python), "-m", "workloads.canary", "--help"],
            check=False,
            cwd=app_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert canary.returncode == 0 and "--min-agreement" in canary.stdout, canary.stderr
    with server_process([str(python), "-m", f"workloads.{image}"], env, app_dir) as server:
        assert httpx.get(f"{server.url}{contract.LIVENESS_PATH}").status_code == 200
        x, _ = digits()
        response = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=infer_body(x[:2]))
        assert response.status_code == 200 and response.json()["model_version"] == "v1"
        output = server.stop()
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert server.process.returncode in (0, -signal.SIGTERM) and "Traceback" not in output, output
