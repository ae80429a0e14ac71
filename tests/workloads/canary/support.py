"""A real Prometheus (/usr/bin/prometheus) on loopback, scraping the test servers every 200 ms
with the target labels every scraped series carries (`region`, `app`; workloads/contract.py)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.workloads.serving.support import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_INTERVAL = "200ms"

needs_prometheus = pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="no prometheus binary")


@contextmanager
def prometheus(tmp: Path, targets: Mapping[str, Mapping[str, str]]) -> Iterator[str]:
    """Prometheus scraping each metrics URL of `targets` (`http://host:port/path`) with its
    labels; yields the base URL once every target was scraped."""
    config = tmp / "prometheus.yml"
    jobs = ""
    for i, (url, labels) in enumerate(targets.items()):
        parsed = httpx.URL(url)
        jobs += (
            f"  - job_name: target-{i}\n    metrics_path: {parsed.path}\n    static_configs:\n"
            f"      - targets: ['{parsed.host}:{parsed.port}']\n"
            f"        labels: {{{', '.join(f'{k}: {v}' for k, v in labels.items())}}}\n"
        )
    config.write_text(f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\nscrape_configs:\n{jobs}")
    port = free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Ready only once every target was scraped: Prometheus applies its targets a few
        # seconds after start, and a counter's increase() counts from its first sample on.
        deadline = time.monotonic() + 60
        while not _all_up(url, len(targets)):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"prometheus did not scrape {list(targets)}:\n{process.communicate()[1]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _all_up(url: str, count: int) -> bool:
    try:
        active = httpx.get(f"{url}/api/v1/targets", timeout=1).json()["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return len(active) == count and all(target["health"] == "up" for target in active)
