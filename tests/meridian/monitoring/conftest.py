"""promtool and a real Prometheus, shared by the monitoring tests; both skip, saying how to
install them, where Debian's `prometheus` package (or Homebrew's) is missing."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meridian.monitoring.cli import ROOT
from tests.meridian.monitoring.fleet_series import openmetrics

INSTALL = "install it: apt-get install prometheus (Debian/Ubuntu) or brew install prometheus (macOS)"
READY_TIMEOUT_S = 60


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found: the Prometheus rule and dashboard tests need it; {INSTALL}")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return tool("promtool")


@dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at now through the HTTP API; raises on any error Prometheus reports."""
        body = urllib.parse.urlencode({"query": expr}).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query", data=body, timeout=30) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{expr}\n-> HTTP {err.code}: {err.read().decode()}") from None
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def rule_groups(self) -> list[dict[str, Any]]:
        """/api/v1/rules: every loaded group with each rule's health, last error and state."""
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=30) as response:
            return json.load(response)["data"]["groups"]

    def evaluated_rules(self) -> list[dict[str, Any]]:
        """Every rule once each has been evaluated (Prometheus evaluates them once per second)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            rules = [rule for group in self.rule_groups() for rule in group["rules"]]
            if rules and all(not rule["lastEvaluation"].startswith("0001-") for rule in rules):
                return rules
            time.sleep(0.5)
        raise RuntimeError(f"rules not all evaluated after {READY_TIMEOUT_S}s")

    def label_values(self, label: str, match: str) -> list[str]:
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/label/{label}/values?{query}", timeout=30) as response:
            return json.load(response)["data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prometheus(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus on loopback over two hours of a fleet's metrics (fleet_series.py),
    backfilled with promtool so every range query has history without waiting for scrapes."""
    binary = tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    data, tsdb = work / "fleet.om", work / "tsdb"
    with data.open("w") as out:
        out.writelines(openmetrics(time.time() - 15))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(data), str(tsdb)], check=True, capture_output=True
    )
    config = work / "prometheus.yml"
    # Nothing to scrape (the history is all there is); the generated rules, evaluated every second.
    rules = ROOT / "monitoring" / "rules" / "*.yaml"
    config.write_text(f"global: {{evaluation_interval: 1s}}\nrule_files: ['{rules}']\n")
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tsdb}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process, work / "prometheus.log")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready after {READY_TIMEOUT_S}s:\n{log.read_text()[-2000:]}")
