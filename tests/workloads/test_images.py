"""Each serving image's entrypoint starts from a clean venv built from that image's pinned
requirements file alone, with only the files its Dockerfile copies (no Docker engine here, so
this is the closest check of the image's contents).

`pip install --no-deps` then `pip check` proves the requirements file pins its whole closure;
the server then starts for real on a free port, loads a signed artifact and answers V2 health
and inference requests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.workloads.serving.support import MODEL, REGION, digits, infer_body, make_registry
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
                shutil.copytree(path, to / path.name if target.endswith("/") else to, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                to.mkdir(parents=True, exist_ok=True) if target.endswith("/") else to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, to / path.name if target.endswith("/") else to)
    return dest


def clean_venv(image: str, dest: Path) -> Path:
    subprocess.run([PYTHON, "-m", "venv", str(dest)], check=True)
    pip = [str(dest / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    requirements = ROOT / "workloads" / image / "requirements.txt"
    subprocess.run([*pip, "install", "--no-deps", "-r", str(requirements)], check=True, timeout=900)
    check = subprocess.run([*pip[:-1], "check"], capture_output=True, text=True)
    assert check.returncode == 0, f"{requirements} misses pins:\n{check.stdout}"
    return dest / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize(("image", "variant"), [("server", Variant.FP32), ("edge", Variant.INT8)])
def test_entrypoint_starts_from_a_clean_venv_of_the_image_requirements(image: str, variant: Variant, tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    registry.publish("v1", seed=1, variant=variant)
    python = clean_venv(image, tmp_path / "venv")
    app_dir = image_tree(image, tmp_path / "app")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        contract.ENV_HTTP_PORT: str(port),
        contract.ENV_REGION: REGION,
        contract.ENV_MODEL_NAME: MODEL,
        contract.ENV_REGISTRY_URL: registry.url,
        contract.ENV_TRUSTED_KEY: str(registry.trusted_key),
        contract.ENV_STABLE_VERSION: "v1",
        contract.ENV_CACHE_DIR: str(tmp_path / "cache"),
        contract.ENV_UPSTREAM_URL: f"http://127.0.0.1:{free_port()}",  # read by the edge only
    }
    help_text = subprocess.run([str(python), "-m", f"workloads.{image}", "--help"], cwd=app_dir, env=env, capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and contract.ENV_REGISTRY_URL in help_text.stdout, help_text.stderr
    process = subprocess.Popen([str(python), "-m", f"workloads.{image}"], cwd=app_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{url}{contract.READINESS_PATH}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.2)
        assert httpx.get(f"{url}{contract.LIVENESS_PATH}").status_code == 200
        x, _ = digits()
        response = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=infer_body(x[:2]))
        assert response.status_code == 200 and response.json()["model_version"] == "v1"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = process.communicate()[0]
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert process.returncode in (0, -signal.SIGTERM) and "Traceback" not in output, output
