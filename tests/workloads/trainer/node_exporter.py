"""The SuperNode's metrics exporter as the process its sidecar runs, and a Prometheus scrape of
it, for the exporter's own tests and the federation's."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from workloads import contract
from workloads.processes import wait_ready
from workloads.trainer.launch import REPO_ROOT, free_port


@contextmanager
def node_exporter(records: Path) -> Iterator[str]:
    """`contract.NODE_METRICS_COMMAND` on a free loopback port: yields its metrics URL; stops it
    with SIGTERM (as the kubelet does) and checks that it exits cleanly."""
    port = free_port()
    command = [sys.executable, *contract.NODE_METRICS_COMMAND[1:]]
    process = subprocess.Popen(
        [*command, "--records", str(records), "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}{contract.METRICS_PATH}"
    try:
        wait_ready(process, url, timeout=30)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0]
    assert process.returncode == 0, output


def scrape(url: str) -> dict[str, float]:
    """Every sample, keyed as the exposition writes it: `name` or `name{label="value"}`."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name + ("{" + ",".join(f'{k}="{v}"' for k, v in sample.labels.items()) + "}" if sample.labels else ""): (
            sample.value
        )
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
