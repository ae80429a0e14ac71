"""The gate: built from the settings (none at all for an open server, which is announced loudly;
an unusable keys file stops the process), and per-caller metric labels that stay bounded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.workloads.serving.credentials import AUDIENCE, ISSUER, Issuer, jwks_server, write_api_keys
from tests.workloads.serving.support import Registry, exposition, make_registry, settings
from workloads import contract
from workloads.serving import gate as gate_module
from workloads.serving.auth import Authenticator, OidcVerifier
from workloads.serving.gate import OTHER, Gate, announce, build_gate
from workloads.serving.metrics import ServingMetrics
from workloads.serving.ratelimit import Limit, RateLimits, TokenBuckets


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return make_registry(tmp_path_factory.mktemp("registry"))


def test_an_open_server_has_no_gate_and_says_so_loudly(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert build_gate(settings(registry, tmp_path), ServingMetrics()) is None
    with caplog.at_level(logging.INFO):
        announce(None, 8080)
    assert "NO CALLER AUTHENTICATION" in caplog.text and contract.ENV_API_KEYS_FILE in caplog.text
    # Limits without credentials: one bucket for everyone, and still the warning.
    limited = build_gate(settings(registry, tmp_path, rate_limits=RateLimits(Limit(1, 1))), ServingMetrics())
    assert limited is not None and not limited.authenticates
    caplog.clear()
    with caplog.at_level(logging.INFO):
        announce(limited, 8080)
    assert "NO CALLER AUTHENTICATION" in caplog.text and "1 requests/s (burst 1)" in caplog.text


def test_a_server_with_keys_names_them_without_their_secrets(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = write_api_keys(tmp_path / "keys.json", {"alice": "the-secret-of-alice"})
    with caplog.at_level(logging.INFO):
        gate = build_gate(settings(registry, tmp_path, api_keys_file=keys), ServingMetrics())
        announce(gate, 8080)
    assert "NO CALLER" not in caplog.text and "alice" in caplog.text and "the-secret" not in caplog.text


@pytest.mark.parametrize("content", [None, "{}", '{"keys": [{"id": "a", "salt": "zz", "sha256": "00"}]}'])
def test_an_unusable_keys_file_at_start_stops_the_process_naming_it(
    registry: Registry, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit, match=f"API keys file {path}"):
        build_gate(settings(registry, tmp_path, api_keys_file=path), ServingMetrics())


@pytest.mark.anyio
async def test_token_subjects_past_the_label_bound_are_counted_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_module, "MAX_SUBJECT_LABELS", 3)
    issuer = Issuer()
    issuer.add_key("k", "ES256")
    with jwks_server(issuer) as (url, _):
        verifier = OidcVerifier(ISSUER, AUDIENCE, url)
        verifier.refresh()
        metrics = ServingMetrics()
        limits = RateLimits(Limit(1000, 1000), {"vip": Limit(1000, 1000)})
        gate = Gate(metrics, authenticator=Authenticator(None, verifier), limits=TokenBuckets(limits))
        for subject in [f"user-{i}" for i in range(6)] + ["vip", "user-0"]:
            scope = {"headers": [(b"authorization", f"Bearer {issuer.token('k', subject)}".encode())]}
            caller, send = await gate.admit(scope, _discard)
            assert caller == subject  # the limits hold per subject, whatever the label
            await send({"type": "http.response.start", "status": 200})
    scraped = exposition(metrics)
    for labelled, count in [("user-0", 2), ("user-1", 1), ("user-2", 1), (OTHER, 3), ("vip", 1)]:
        assert f'meridian_inference_caller_requests_total{{caller="{labelled}",status="200"}} {count:.1f}' in scraped
    assert 'caller="user-5"' not in scraped


async def _discard(message: dict[str, Any]) -> None:
    pass
