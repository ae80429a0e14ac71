"""Server settings: environment variables from workloads.contract, flags over them, and bad
values refused at start with the flag and its variable named."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads import contract
from workloads.serving.ratelimit import Limit, RateLimits
from workloads.serving.settings import Oidc, admin_token, parse_serving_args, serving_parser

REQUIRED = {contract.ENV_REGION: "eu-west-1", contract.ENV_REGISTRY_URL: "https://models.example"}


def parse(argv: list[str]):
    return parse_serving_args(serving_parser("server", "test", default_variant="fp32"), argv)[0]


def test_environment_variables_configure_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        **REQUIRED,
        contract.ENV_MAX_BATCH_SIZE: "64",
        contract.ENV_CANDIDATE_VERSION: "v8",
        contract.ENV_CANDIDATE_WEIGHT: "10",
        contract.ENV_ADMIN_TOKEN: "s3cret",
    }.items():
        monkeypatch.setenv(name, value)
    settings = parse([])
    assert (settings.region, settings.registry_url, settings.max_batch_size) == (
        "eu-west-1",
        "https://models.example",
        64,
    )
    assert (settings.stable, settings.candidate, settings.candidate_weight) == ("latest", "v8", 10)
    assert settings.admin_token == "s3cret" and settings.port == contract.HTTP_PORT and settings.host == "127.0.0.1"


def test_metrics_have_their_own_port_from_the_environment_or_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    assert parse([]).metrics_port == contract.METRICS_PORT != contract.HTTP_PORT
    monkeypatch.setenv(contract.ENV_METRICS_PORT, "9311")
    assert parse([]).metrics_port == 9311
    assert parse(["--metrics-port", "0"]).metrics_port == 0  # any free port (tests)


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(contract.ENV_MAX_BATCH_SIZE, "64")
    assert parse(["--max-batch-size", "8", "--region", "us-east-1"]).max_batch_size == 8


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            contract.ENV_MAX_BATCH_SIZE,
            "lots",
            "--max-batch-size: 'lots' is not a valid int (from MERIDIAN_MAX_BATCH_SIZE)",
        ),
        (
            contract.ENV_CANDIDATE_WEIGHT,
            "150",
            "--candidate-weight: 150 is outside 0..100 (from MERIDIAN_CANDIDATE_WEIGHT)",
        ),
        (
            contract.ENV_METRICS_PORT,
            "70000",
            "--metrics-port: 70000 is outside 0..65535 (from MERIDIAN_METRICS_PORT)",
        ),
        (
            contract.ENV_MODEL_VARIANT,
            "fp64",
            "--variant: 'fp64' is not one of fp32, pruned, int8 (from MERIDIAN_MODEL_VARIANT)",
        ),
    ],
)
def test_bad_values_stop_the_server_naming_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: str, value: str, message: str
) -> None:
    for name, required in REQUIRED.items():
        monkeypatch.setenv(name, required)
    monkeypatch.setenv(env, value)
    with pytest.raises(SystemExit):
        parse([])
    assert message in capsys.readouterr().err


def test_missing_region_and_registry_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse([])
    assert "--region" in capsys.readouterr().err


def test_a_candidate_weight_needs_a_candidate_unless_stable_follows_latest() -> None:
    with pytest.raises(SystemExit, match="needs --candidate"):
        parse(["--region", "r", "--registry-url", "file:///x", "--stable", "v1", "--candidate-weight", "5"])
    # Following `latest`, the weight is what each new latest version enters with.
    following = parse(["--region", "r", "--registry-url", "file:///x", "--candidate-weight", "5"])
    assert (following.stable, following.candidate, following.candidate_weight) == ("latest", None, 5)


def test_the_admin_token_file_wins_over_the_variable_and_is_read_stripped(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-the-secret\n")
    environ = {contract.ENV_ADMIN_TOKEN_FILE: str(token), contract.ENV_ADMIN_TOKEN: "from-env"}
    assert admin_token(environ) == "from-the-secret"
    assert admin_token({contract.ENV_ADMIN_TOKEN: "from-env"}) == "from-env"
    assert admin_token({}) is None


def test_an_unreadable_or_empty_admin_token_file_stops_the_process_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SystemExit, match=f"{contract.ENV_ADMIN_TOKEN_FILE}={missing}: cannot read"):
        admin_token({contract.ENV_ADMIN_TOKEN_FILE: str(missing)})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(SystemExit, match="admin token file is empty"):
        admin_token({contract.ENV_ADMIN_TOKEN_FILE: str(empty)})


def test_callers_credentials_and_limits_come_from_the_contracts_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        **REQUIRED,
        contract.ENV_API_KEYS_FILE: str(tmp_path / "keys.json"),
        contract.ENV_OIDC_ISSUER: "https://issuer.example",
        contract.ENV_OIDC_AUDIENCE: "meridian",
        contract.ENV_OIDC_JWKS_URL: "https://issuer.example/jwks",
        contract.ENV_RATE_LIMITS: '{"default": {"requestsPerSecond": 5, "burst": 10}, "callers": {"a": {"burst": 1}}}',
    }.items():
        monkeypatch.setenv(name, value)
    settings = parse([])
    assert settings.api_keys_file == tmp_path / "keys.json"
    assert settings.oidc == Oidc("https://issuer.example", "meridian", "https://issuer.example/jwks")
    assert settings.rate_limits == RateLimits(Limit(5, 10), {"a": Limit(100, 1)})


def test_without_credentials_the_server_is_open_and_partial_oidc_stops_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    open_server = parse([])
    assert (open_server.api_keys_file, open_server.oidc, open_server.rate_limits) == (None, None, None)
    with pytest.raises(SystemExit, match="--oidc-audience, --oidc-jwks-url missing"):
        parse(["--oidc-issuer", "https://issuer.example"])
    monkeypatch.setenv(contract.ENV_RATE_LIMITS, '{"default": {"burst": 0}}')
    with pytest.raises(SystemExit):
        parse([])
    assert (
        f"default.burst: expected an integer >= 1, got 0 (from {contract.ENV_RATE_LIMITS})" in capsys.readouterr().err
    )
