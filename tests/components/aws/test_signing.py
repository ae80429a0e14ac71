"""Each AWS region signs its models with its own Ed25519 key in KMS (the private key never leaves
it) and hands its workloads a registry in its own bucket: published to `s3://<bucket>/<region>`,
read from the CDN's `/<region>` path, verified with that key's public half. The home also
hands out the global model's registry, signed with the home's key."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from components.aws.keys import SIGNING_KEY_SPEC, SIGNING_KEY_USAGE
from components.catalog import Cloud
from components.cluster_access import ClusterAccess, ModelRegistry
from components.config import StackConfig
from components.fleet import Fleet, FleetArgs
from components.pulumi_internals import resolved
from meridian.mocks import ACCOUNT, Inventory, ed25519_public_key, run_under_mocks
from meridian.preview import _pulumi_config, provider_config
from tests.components.aws.arns import key_arn
from tests.components.cloud_queries import config_of, named, regions_on, statements

KEY = "aws:kms/key:Key"
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410


def test_every_aws_region_has_its_own_ed25519_signing_key_in_kms(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        key = named(inventory, f"{region.name}-signing-key", KEY)
        assert key.region == region.name
        assert (
            (key.inputs["customerMasterKeySpec"], key.inputs["keyUsage"])
            == (
                SIGNING_KEY_SPEC,
                SIGNING_KEY_USAGE,
            )
            == ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
        )
        assert key.inputs["enableKeyRotation"] is False  # KMS cannot rotate asymmetric keys
        assert [s["Sid"] for s in statements(key)] == ["AccountAdministers"]  # IAM decides who signs
        alias = named(inventory, f"{region.name}-signing-key", "aws:kms/alias:Alias")
        assert alias.inputs["name"] == f"alias/meridian/{stack}/{region.name}-signing"


def _resolved(registry: ModelRegistry | None) -> dict[str, Any] | None:
    if registry is None:
        return None
    return {
        "store": resolved(registry.store_url),
        "read": resolved(registry.read_url),
        "key": resolved(registry.signer.key_ref),
        "pem": resolved(registry.signer.public_key_pem),
        "private": registry.signer.private_key_pem,
    }


Accesses = dict[str, dict[str, Any]]


def access_of(config: StackConfig, stack: str) -> tuple[Inventory, Accesses]:
    """What the program registers, and each region's models, global models and localizer role
    (resolved) as the Fleet hands them to the workloads."""
    built: list[Fleet] = []
    engine = {**provider_config(stack), **_pulumi_config(config)}
    inventory = run_under_mocks(
        lambda: built.append(Fleet("meridian", FleetArgs(config=config, stack=stack))), stack, engine
    )
    accesses: dict[str, ClusterAccess] = {name: outcome.access for name, outcome in built[0].regions.items()}
    return inventory, {
        name: {
            "models": _resolved(access.models),
            "global": _resolved(access.global_models),
            "localizer": resolved(access.localizer_identity.annotations.get("eks.amazonaws.com/role-arn")),
        }
        for name, access in accesses.items()
    }


@pytest.fixture(scope="module", params=[True, False], ids=["cdn", "no-cdn"])
def aws_prod_access(request: pytest.FixtureRequest) -> tuple[bool, Inventory, Accesses]:
    stack = config_of("aws-prod")
    config = stack.model_copy(update={"cdn": stack.cdn.model_copy(update={"enabled": request.param})})
    return request.param, *access_of(config, "aws-prod")


def test_each_region_publishes_to_its_own_bucket_and_is_read_through_its_cdn_path(
    aws_prod_access: tuple[bool, Inventory, Accesses],
) -> None:
    cdn, inventory, accesses = aws_prod_access
    config = config_of("aws-prod")
    for region in config.regions:
        models = accesses[region.name]["models"]
        assert models["store"] == f"s3://{region.name}-registry/{region.name}"
        cdn_path = f"https://models.{config.dns.domain}/{region.name}"
        assert models["read"] == (cdn_path if cdn else models["store"])
        signing_key = named(inventory, f"{region.name}-signing-key", KEY)
        assert models["key"] == f"awskms:///{key_arn(signing_key)}"
        assert key_arn(signing_key).startswith(f"arn:aws:kms:{region.name}:{ACCOUNT}:key/")
        assert models["private"] is None  # KMS keeps it
        assert accesses[region.name]["localizer"] == f"arn:aws:iam::{ACCOUNT}:role/{region.name}-localizer"


def test_each_regions_public_key_is_its_own_ed25519_key(
    aws_prod_access: tuple[bool, Inventory, Accesses],
) -> None:
    _, _, accesses = aws_prod_access
    pems = [access["models"]["pem"] for access in accesses.values()]
    assert len(set(pems)) == len(pems)
    for pem in pems:
        lines = pem.strip().splitlines()
        assert (lines[0], lines[-1]) == ("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----")
        der = base64.b64decode("".join(lines[1:-1]))
        assert der[: len(ED25519_SPKI_PREFIX)] == ED25519_SPKI_PREFIX and len(der) == 44


def test_only_the_home_hands_out_the_global_model_signed_with_its_own_key(
    aws_prod_access: tuple[bool, Inventory, Accesses],
) -> None:
    cdn, _, accesses = aws_prod_access
    config = config_of("aws-prod")
    home = accesses[config.home]
    assert home["global"] == {
        "store": f"s3://{config.home}-registry/global",
        "read": f"https://models.{config.dns.domain}/global" if cdn else f"s3://{config.home}-registry/global",
        "key": home["models"]["key"],
        "pem": home["models"]["pem"],
        "private": None,
    }
    assert [name for name, access in accesses.items() if access["global"] is not None] == [config.home]


def test_the_offline_engine_hands_out_real_ed25519_public_keys() -> None:
    # RFC 8032, 7.1, TEST 1: the secret key and the public key it derives
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert ed25519_public_key(secret).hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
