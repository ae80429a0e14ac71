"""Keys and tokens never sit in state in plain text.

For every stack, every input the program sends the engine, every output a component registers
and every export is walked; each value that carries private key material or a credential must
arrive as a Pulumi secret (the engine then encrypts it in state). Secretness is read from the
wire form (meridian/mocks.py records where each secret mark sits), so a plain value beside a
secret one is still caught.

What counts as key material or a credential:
- text holding a PEM or OpenSSH private key (`PRIVATE KEY-----`), also base64-encoded or inside
  JSON text (a kubeconfig, a policy);
- a credential the mocked invokes hand out (registry passwords, access tokens), wherever the
  program carries it;
- a string under a key named like a credential: `token`, `password`, `client-key-data`,
  `*privateKey*`, `secretAccessKey`, `apiKey`, and `sha256`, an API key's salted hash
  (contract.api_key_record: a fast hash of a key, kept as secret as the key);
- an API key's secret (the offline engine's stand-ins carry a marker: meridian/mocks.py);
- every value of a Kubernetes Secret's `data` / `stringData` (pulumi-kubernetes marks them
  secret on a real engine; under mocks the program's own inputs must be);
- a container env var named like a credential (`*TOKEN*`, `*KEY*`, `*PASSWORD*`, `*SECRET*`)
  with a literal value, unless the value only names where the key is (a path, a KMS key ref) or
  is a number (a setting about the key: MERIDIAN_ADMIN_TOKEN_GRACE_S).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_tls as tls
import pytest

from meridian.mocks import MOCK_CREDENTIALS, Inventory, PropertyPath, run_under_mocks, unmarked
from workloads import contract

MARKERS = ("PRIVATE KEY-----", *MOCK_CREDENTIALS)
CREDENTIAL_KEY = re.compile(r"token|password|clientkeydata|privatekey|secretaccesskey|apikey|^sha256$")
CREDENTIAL_ENV = re.compile(r"TOKEN|KEY|PASSWORD|SECRET|CREDENTIAL")
# An env value that names where a key is, not the key: a path in the pod, a KMS key; or a number.
KEY_REFERENCE = re.compile(r"^(/|awskms://|gcpkms://|[0-9]+$)")
SECRET_TYPE = "kubernetes:core/v1:Secret"
BASE64 = re.compile(r"^[A-Za-z0-9+/]{16,}={0,2}$")


def _carries_key_material(text: str) -> bool:
    if any(marker in text for marker in MARKERS):
        return True
    if BASE64.match(text) and len(text) % 4 == 0:
        try:
            decoded = base64.b64decode(text).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return any(marker in decoded for marker in MARKERS)
    return False


def _json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _normalized(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


@dataclass(frozen=True)
class Sensitive:
    """One value carrying key material or a credential: where, why, and whether it is a secret."""

    where: str
    why: str
    secret: bool


def sensitive_values(
    values: dict[str, Any], secret_paths: list[PropertyPath], resource_type: str = ""
) -> Iterator[Sensitive]:
    """Every path of `values` that carries key material or a credential."""
    marked = set(secret_paths)

    def walk(value: Any, path: PropertyPath, secret: bool, rule: str | None) -> Iterator[Sensitive]:
        secret = secret or path in marked
        if isinstance(value, dict):
            env_var = path[-2:-1] == ("env",) and isinstance(value.get("name"), str)
            for key, item in value.items():
                key_rule = rule
                if resource_type == SECRET_TYPE and path == () and key in ("data", "stringData"):
                    key_rule = f"a Kubernetes Secret's {key}"
                elif CREDENTIAL_KEY.search(_normalized(str(key))):
                    key_rule = f"a credential named {key!r}"
                elif env_var and key == "value" and CREDENTIAL_ENV.search(value["name"].upper()):
                    literal = isinstance(item, str) and not KEY_REFERENCE.match(item)
                    key_rule = f"env var {value['name']} with a literal value" if literal else rule
                yield from walk(item, (*path, key), secret, key_rule)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, (*path, index), secret, rule)
        elif isinstance(value, str) and value:
            where = "/".join(map(str, path))
            if _carries_key_material(value):
                yield Sensitive(where, "key material or a credential", secret)
            elif rule is not None:
                yield Sensitive(where, rule, secret)
            elif (parsed := _json(value)) is not None:  # a kubeconfig, a policy: its secretness is the text's
                for found in walk(parsed, (), secret, None):
                    yield Sensitive(f"{where} (JSON text) > {found.where}", found.why, found.secret)

    yield from walk(values, (), False, None)


def everything_sensitive(inventory: Inventory) -> Iterator[tuple[str, Sensitive]]:
    """(`<resource or export>`, the value) for every input, registered output and export."""
    for r in inventory.resources:
        for found in sensitive_values(unmarked(r.inputs), r.secret_inputs, r.type):
            yield f"{r.type} {r.name} input", found
        for found in sensitive_values(r.registered_outputs, r.secret_registered_outputs):
            yield f"{r.type} {r.name} registered output", found
    for found in sensitive_values(inventory.outputs, inventory.secret_outputs):
        yield "stack export", found


def leaks(inventory: Inventory) -> list[str]:
    """What state would keep in plain text: `<resource or export> <path>: <why>`."""
    return [f"{owner} {s.where}: {s.why} in plain text" for owner, s in everything_sensitive(inventory) if not s.secret]


def test_every_key_and_token_of_the_stack_is_a_secret(inventory: Inventory) -> None:
    assert leaks(inventory) == []
    # Not vacuous: every stack carries keys (the federation's node keys, at least), all secret.
    assert any(s.secret for _, s in everything_sensitive(inventory))


# -- the walk can fail: tiny programs that each drop one secret ---------------------------------


def _signing_key() -> tls.PrivateKey:
    return tls.PrivateKey("signing", algorithm="ED25519")


def _k8s_secret(name: str, data: pulumi.Input[dict[str, pulumi.Input[str]]]) -> None:
    k8s.core.v1.Secret(name, metadata=k8s.meta.v1.ObjectMetaArgs(name=name), string_data=data)


class _Holder(pulumi.ComponentResource):
    def __init__(self, outputs: dict[str, Any]):
        super().__init__("test:secrets:Holder", "holder")
        self.register_outputs(outputs)


def _unsecret_pem() -> pulumi.Output[str]:
    # The mistake: a derived value that drops the key's secretness.
    return pulumi.Output.unsecret(_signing_key().private_key_pem).apply(lambda pem: pem.strip() + "\n")


LEAKY_PROGRAMS = {
    "a ConfigMap built from an apply that lost secretness": lambda: k8s.core.v1.ConfigMap(
        "signing", data={"key.pem": _unsecret_pem()}
    ),
    # The typed SDK marks a Secret's data itself; the rule guards one registered any other way.
    "a Secret registered without the typed SDK": lambda: pulumi.CustomResource(
        SECRET_TYPE, "api", {"stringData": {"api-key": "not a PEM, still a secret"}}
    ),
    "an invoke's access token passed on as it came": lambda: k8s.Provider(
        "gke",
        kubeconfig=gcp.organizations.get_client_config_output().access_token.apply(
            lambda token: json.dumps({"users": [{"name": "u", "user": {"token": token}}]})
        ),
    ),
    "a literal token in an env var": lambda: k8s.batch.v1.Job(
        "job",
        spec=k8s.batch.v1.JobSpecArgs(
            template=k8s.core.v1.PodTemplateSpecArgs(
                spec=k8s.core.v1.PodSpecArgs(
                    restart_policy="Never",
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name="c", image="i", env=[k8s.core.v1.EnvVarArgs(name="HF_TOKEN", value="hf_abc")]
                        )
                    ],
                )
            )
        ),
    ),
    "API key hashes in a ConfigMap": lambda: k8s.core.v1.ConfigMap(
        "api-keys", data={"keys.json": json.dumps({"keys": [contract.api_key_record("k", b"salt", "secret")]})}
    ),
    "a component that registers a private key it unsecreted": lambda: _Holder({"key": _unsecret_pem()}),
    "an export of a private key it unsecreted": lambda: pulumi.export("key", _unsecret_pem()),
}


@pytest.mark.parametrize("program", LEAKY_PROGRAMS.values(), ids=LEAKY_PROGRAMS.keys())
def test_a_value_that_drops_its_secretness_is_found(program: Any) -> None:
    assert leaks(run_under_mocks(program)) != []


def test_what_an_apply_derives_from_a_secret_stays_secret() -> None:
    def program() -> None:
        key = _signing_key()
        pem = key.private_key_pem.apply(lambda pem: pem.strip() + "\n")
        _k8s_secret("signing", {"key.pem": pem, "key.pub": key.public_key_pem})
        tls.SelfSignedCert(
            "ca",
            private_key_pem=pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name="ca"),
            validity_period_hours=1,
            allowed_uses=["cert_signing"],
        )
        _Holder({"key": pem, "public": key.public_key_pem})
        pulumi.export("key", pem)

    inventory = run_under_mocks(program)
    assert leaks(inventory) == []
    secret_inputs = {r.name: r.secret_inputs for r in inventory.resources if r.secret_inputs}
    assert secret_inputs == {"signing": [("stringData",)], "ca": [("privateKeyPem",)]}
    (holder,) = inventory.of_type("test:secrets:Holder")
    assert holder.secret_registered_outputs == [("key",)]
    assert inventory.secret_outputs == [("key",)]


def test_the_kubernetes_sdk_makes_a_secrets_data_secret_whatever_it_is_given() -> None:
    def program() -> None:
        _k8s_secret("api", {"api-key": "a literal", "key.pem": _unsecret_pem()})

    (secret,) = run_under_mocks(program).of_type(SECRET_TYPE)
    assert secret.secret_inputs == [("stringData",)]
