"""`meridian local` says clearly what stops it, before it starts anything, and its `status`
shows how to call the fleet as a user."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meridian.local import cli
from meridian.local.front_door import FrontDoor
from meridian.local.supervisor import ProcessSpec, Supervisor
from tests.workloads.serving.support import digits, free_port, make_registry, server_env
from workloads import contract
from workloads.serving.protocol import PROBABILITIES, encode_json_request

CURL = shutil.which("curl")


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


@pytest.mark.skipif(CURL is None, reason="curl is not installed, so the printed command cannot be run")
def test_status_prints_a_curl_that_calls_a_running_server_as_a_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "local"
    door = FrontDoor(out)
    door.ensure("local", ["server-local-us"], [])
    x, _ = digits()
    door.example_request.write_bytes(encode_json_request(x[:1]))
    registry = make_registry(tmp_path, {"v1": 0})
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = server_env(
        registry,
        port,
        tmp_path / "cache",
        **{
            contract.ENV_TLS_CERT_FILE: str(door.cert("server-local-us")),
            contract.ENV_TLS_KEY_FILE: str(door.key("server-local-us")),
            contract.ENV_API_KEYS_FILE: str(door.api_keys_file),
        },
    )
    server = ProcessSpec(
        "server-local-us",
        [sys.executable, "-m", "workloads.server"],
        "server",
        port=port,
        health_url=f"{url}{contract.READINESS_PATH}",
        url=url,
        env=env,
        ca_file=str(door.ca_cert),
    )
    supervisor = Supervisor(out)
    supervisor.claim()
    try:
        supervisor.start(server, ready_timeout=120)
        assert cli.main(["--out", str(out), "status"]) == 0
        printed = capsys.readouterr().out
        (curl,) = [line.strip() for line in printed.splitlines() if line.strip().startswith("curl ")]
        assert door.api_key.read_text().strip() not in printed  # read from its file when run

        answered = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=False)
        assert answered.returncode == 0, answered.stdout + answered.stderr
        probabilities = next(o for o in json.loads(answered.stdout)["outputs"] if o["name"] == PROBABILITIES)
        assert probabilities["shape"] == [1, 10]

        anonymous = curl.replace(f'-H "{contract.API_KEY_HEADER}: $(cat {door.api_key})" ', "")
        assert anonymous != curl
        refused = subprocess.run(
            ["bash", "-c", f"{anonymous} -o /dev/null -w '%{{http_code}}'"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.stdout == "401", refused.stdout + refused.stderr
    finally:
        supervisor.stop_all()
