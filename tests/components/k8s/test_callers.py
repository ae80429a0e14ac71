"""Who may call: every region's servers and edges read the API keys as salted hashes from one
Secret fed by the stack's secret config, and the OIDC issuer and per-caller limits of `auth`
from their environment; a key listed without a secret stops the program, naming the command
that sets it."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.config import load_stack
from components.k8s.callers import API_KEYS_SECRET, api_key_secrets
from components.k8s.namespace import namespace_name
from components.k8s.serving import EDGE_APP, SERVER_APP
from meridian.mocks import MOCK_API_KEY, ProgramError, run_under_mocks
from tests.components.k8s.conftest import Deployed
from tests.components.k8s.harness import engine_config
from tests.components.k8s.manifests import containers, env_of, pod_spec
from workloads import contract

SECRET_TYPE = "kubernetes:core/v1:Secret"
KEYS_FILE = f"{contract.API_KEYS_MOUNT}/{contract.API_KEYS_FILE}"


def _stand_in(key_id: str) -> str:
    """The secret the offline engine stands in for (meridian/mocks.py)."""
    return f"{MOCK_API_KEY}-{key_id}"


def _inference(deployed: Deployed, namespace: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (d, c)
        for d in deployed.objects("Deployment")
        if d["metadata"]["namespace"] == namespace
        for c in containers(d)
        if c["name"] in (SERVER_APP, EDGE_APP)
    ]


def test_the_api_keys_secret_holds_only_salted_hashes_of_the_listed_keys(deployed: Deployed) -> None:
    auth = deployed.config.auth
    for region in deployed.config.regions:
        namespace = namespace_name(region.name)
        if not auth.api_keys:
            assert not [s for s in deployed.objects("Secret") if s["metadata"]["name"] == API_KEYS_SECRET]
            continue
        secret = deployed.named("Secret", namespace, API_KEYS_SECRET)
        (text,) = secret["stringData"].values()
        assert list(secret["stringData"]) == [contract.API_KEYS_FILE]
        records = json.loads(text)["keys"]
        assert [r["id"] for r in records] == auth.api_keys
        for record in records:
            salt = bytes.fromhex(record["salt"])
            assert len(salt) == 16
            assert record["sha256"] == contract.api_key_digest(salt, _stand_in(record["id"]))
            assert _stand_in(record["id"]) not in text, "the key itself never reaches the cluster"
        assert len({r["salt"] for r in records}) == len(records), "a salt per key"


def test_the_keys_reach_no_resource_and_their_hashes_only_a_secrets_data(deployed: Deployed) -> None:
    secrets = [_stand_in(key_id) for key_id in deployed.config.auth.api_keys]
    for r in deployed.resources:
        assert not any(secret in json.dumps(r.inputs) for secret in secrets), r.name
        if r.type == SECRET_TYPE and r.inputs["metadata"]["name"] == API_KEYS_SECRET:
            assert r.secret_inputs == [("stringData",)]


def test_the_key_secrets_are_pulumi_secrets_from_the_moment_they_are_read() -> None:
    config = load_stack("aws-prod")

    def program() -> None:
        for key_id, secret in api_key_secrets(config.auth).items():
            pulumi.export(key_id, secret)

    inventory = run_under_mocks(program, config=engine_config(config))
    assert inventory.outputs == {k: _stand_in(k) for k in config.auth.api_keys}
    assert sorted(inventory.secret_outputs) == sorted((k,) for k in config.auth.api_keys)


def test_servers_and_edges_read_the_keys_file_the_oidc_issuer_and_the_limits(deployed: Deployed) -> None:
    auth = deployed.config.auth
    limits = {
        "default": auth.rate_limit.model_dump(mode="json", by_alias=True),
        "callers": {c: limit.model_dump(mode="json", by_alias=True) for c, limit in auth.callers.items()},
    }
    for region in deployed.config.regions:
        inference = _inference(deployed, namespace_name(region.name))
        assert len(inference) == 1 + len(region.edge_sites)
        for deployment, container in inference:
            env = env_of(container)
            assert json.loads(env[contract.ENV_RATE_LIMITS]) == limits
            oidc = {
                k: env.get(k)
                for k in (contract.ENV_OIDC_ISSUER, contract.ENV_OIDC_AUDIENCE, contract.ENV_OIDC_JWKS_URL)
            }
            if auth.oidc is None:
                assert set(oidc.values()) == {None}
            else:
                assert list(oidc.values()) == [auth.oidc.issuer, auth.oidc.audience, auth.oidc.jwks_url]
            assert env.get(contract.ENV_API_KEYS_FILE) == (KEYS_FILE if auth.api_keys else None)
            if auth.api_keys:
                (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == contract.API_KEYS_MOUNT]
                spec = pod_spec(deployment)
                assert spec is not None and mount["readOnly"]
                (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
                assert volume["secret"]["secretName"] == API_KEYS_SECRET


def test_a_listed_key_without_a_secret_stops_the_program_naming_it_and_the_command() -> None:
    config = load_stack("aws-prod")  # lists partner-acme and batch-scoring
    only_one = {**engine_config(config), "meridian:apiKeys": json.dumps({"partner-acme": "s3cret-value-1"})}

    def program() -> None:
        api_key_secrets(config.auth)

    with pytest.raises(ProgramError) as raised:
        run_under_mocks(program, config=only_one)
    message = str(raised.value)
    assert "'batch-scoring'" in message and "'partner-acme'" not in message
    assert "pulumi config set --secret --path 'meridian:apiKeys.batch-scoring' <secret>" in message
