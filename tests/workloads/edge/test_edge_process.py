"""The edge and regional servers as the processes Kubernetes runs (`python -m workloads.edge`,
`python -m workloads.server`, configured by the contract's environment variables), the edge
pulling its int8 artifact from the registry's HTTP server (the CDN's role). The edge escalates
to the live region's escalation listener over mutual TLS (certificates of a test CA), and keeps
answering, saying so, once the region's process is gone."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.workloads.serving.certificates import TestCa
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
from workloads.registry.serve import RegistryServer

ROOT = Path(__file__).resolve().parents[3]
X, _ = digits()


@pytest.mark.slow
def test_edge_escalates_to_the_region_process_and_answers_alone_when_it_dies(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, {"v1": 1}, [Variant.FP32, Variant.INT8])
    ca = TestCa(tmp_path / "stack-ca")
    region_certificate, edge_certificate = ca.server("region"), ca.client("edge-nyc")
    escalation_port = free_port()
    region_env = server_env(
        registry,
        free_port(),
        tmp_path / "region-cache",
        **{
            contract.ENV_ESCALATION_PORT: str(escalation_port),
            contract.ENV_ESCALATION_CERT_FILE: str(region_certificate.cert),
            contract.ENV_ESCALATION_KEY_FILE: str(region_certificate.key),
            contract.ENV_ESCALATION_CLIENT_CA_FILE: str(ca.cert),
        },
    )
    with (
        RegistryServer(registry.root) as cdn,
        server_process([sys.executable, "-m", "workloads.server"], region_env, ROOT) as region,
    ):
        edge_env = server_env(
            registry,
            free_port(),
            tmp_path / "edge-cache",
            **{
                contract.ENV_REGISTRY_URL: cdn.url,
                contract.ENV_MODEL_VARIANT: "int8",
                contract.ENV_UPSTREAM_URL: f"https://127.0.0.1:{escalation_port}",
                contract.ENV_UPSTREAM_CA_FILE: str(ca.cert),
                contract.ENV_UPSTREAM_CERT_FILE: str(edge_certificate.cert),
                contract.ENV_UPSTREAM_KEY_FILE: str(edge_certificate.key),
                contract.ENV_CONFIDENCE_THRESHOLD: "0.99",
            },
        )
        with (
            server_process([sys.executable, "-m", "workloads.edge", "--breaker-failures", "2"], edge_env, ROOT) as edge,
            httpx.Client() as client,
        ):

            def ask(i: int) -> dict:
                response = client.post(f"{edge.url}/v2/models/{MODEL}/infer", json=infer_body(X[1400 + i : 1401 + i]))
                assert response.status_code == 200
                return response.json()["parameters"]

            served = [ask(i)["served_by"] for i in range(100)]
            assert "region" in served and "edge" in served
            region_metrics = client.get(region.metrics_url).text
            region.stop()
            uncertain = [
                i for i in range(100, 300) if (p := ask(i))["served_by"] == "edge" and p.get("region_unavailable")
            ]
            assert len(uncertain) >= 3
            metrics = client.get(edge.metrics_url).text
            public = client.get(f"{edge.url}{contract.METRICS_PATH}")
    assert public.status_code == 404, "metrics only on their own port"
    for family in (
        "meridian_inference_requests_total",
        "meridian_inference_in_flight",
        "meridian_model_version_loaded",
    ):
        assert f"\n{family}{{" in region_metrics and f"\n{family}{{" in metrics, family
    escalated = served.count("region")
    assert (
        f'meridian_escalations_received_total{{caller="unknown",edge="edge-nyc",model="meridian"}} {float(escalated)}'
        in region_metrics
    )
    assert "meridian_edge_breaker_open 1.0" in metrics, "the region is gone: the circuit stays open"
    assert 'meridian_edge_upstream_errors_total{reason="connection"} 4.0' in metrics, (
        "2 escalations x 2 attempts, then the circuit opened"
    )
    fraction = float(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("meridian_edge_local_fraction "))
    )
    assert 0 < fraction < 1 and np.isclose(fraction, 1 - served.count("region") / 300)
