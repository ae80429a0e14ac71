"""The trainer image's Dockerfile and requirements follow the house rules (checked as text:
there is no Docker engine here; checkov scans the Dockerfile in CI)."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.workloads.test_images import image_tree
from workloads import contract
from workloads.trainer import health

TRAINER = Path(__file__).parents[3] / "workloads" / "trainer"
DOCKERFILE = (TRAINER / "Dockerfile").read_text()


def test_every_stage_starts_from_the_same_exactly_pinned_base_image():
    bases = set(re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE))
    assert len(bases) == 1, bases
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", bases.pop())


def test_it_builds_in_two_stages_and_runs_as_the_contract_uid():
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) == 2
    assert f"USER {contract.RUN_AS_UID}:{contract.RUN_AS_UID}" in DOCKERFILE
    assert "HEALTHCHECK" in DOCKERFILE and "workloads.trainer.health" in DOCKERFILE


def test_it_installs_only_the_trainers_pinned_requirements():
    installs = re.findall(r"pip install (.*)", DOCKERFILE)
    assert installs == ["-r /tmp/requirements.txt -c /tmp/requirements.lock"]
    requirements = [
        line
        for line in (TRAINER / "requirements.txt").read_text().splitlines()
        if line and not line.startswith(("#", "--"))
    ]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][\w.+]*", line) for line in requirements)


def test_the_health_check_passes_only_while_a_flower_port_listens(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(health, "PORTS", (server.getsockname()[1],))
        assert health.main() == 0
    assert health.main() == 1


def test_it_carries_the_localizer_the_global_publish_and_the_node_metrics_with_all_they_import(tmp_path):
    """The localizer CronJob, the ServerApp's publish, the SuperNode, its ClientApp runner and its metrics exporter run
    from this image: every module they import is among the files the Dockerfile copies (torch
    and the rest: requirements.txt)."""
    app = image_tree("trainer", tmp_path / "app")
    modules = [
        "workloads.localization.__main__",
        "workloads.trainer.server_app",
        "workloads.tasks.sync",
        "workloads.trainer.node_metrics",  # the SuperNode's metrics sidecar
        "workloads.trainer.supernode",  # the SuperNode itself
        "workloads.trainer.clientapp_runner",  # and its ClientApp process
    ]
    probe = f"import {', '.join(modules)}, workloads; print(workloads.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=app,
        env={**os.environ, "PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(app / "workloads" / "__init__.py")
    assert contract.LOCALIZER_COMMAND[:3] == ("python", "-m", "workloads.localization")
