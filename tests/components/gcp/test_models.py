"""Each GCP region's model pipeline as its cluster receives it: an Ed25519 signing key in Cloud
KMS in the region that only the region's localizer (and at home the trainer, which publishes
the global model) may sign with; `ClusterAccess.models` naming the region's own registry and
its CDN path; at home `ClusterAccess.global_models`; the localizer's Workload Identity."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from components.catalog import Cloud
from components.gcp.signing import ALGORITHM
from meridian.mocks import ED25519_PUBLIC_KEY_PEM
from tests.components.cloud_queries import config_of, mock_id, named, regions_on, under
from tests.components.gcp.conftest import GCP_STACKS, FleetRun

KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"


def _account(run: FleetRun, region: str, role: str) -> str:
    email = named(run.inventory, f"{region}-{role}", "gcp:serviceaccount/account:Account").outputs["email"]
    return f"serviceAccount:{email}"


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_each_region_signs_with_its_own_ed25519_kms_key(stack: str, fleet_run: Callable[[str], FleetRun]) -> None:
    run = fleet_run(stack)
    for region in regions_on(stack, Cloud.GCP):
        key = named(run.inventory, f"{region.name}-models-signer", KEY)
        assert key.region == region.name
        assert key.inputs["purpose"] == "ASYMMETRIC_SIGN"
        assert key.inputs["versionTemplate"] == {"algorithm": ALGORITHM, "protectionLevel": "SOFTWARE"}
        assert ALGORITHM == "EC_SIGN_ED25519"
        assert "rotationPeriod" not in key.inputs  # KMS cannot rotate an asymmetric key
        ring = named(run.inventory, f"{region.name}-keys", "gcp:kms/keyRing:KeyRing").inputs
        assert ring["location"] == region.name


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_only_the_localizer_and_at_home_the_trainer_may_sign(stack: str, fleet_run: Callable[[str], FleetRun]) -> None:
    run = fleet_run(stack)
    for region in regions_on(stack, Cloud.GCP):
        key = named(run.inventory, f"{region.name}-models-signer", KEY)
        grants = [r.inputs for r in under(run.inventory, f"{region.name}-models-signer") if r.type == KEY_GRANT]
        assert {(g["role"], g["cryptoKeyId"]) for g in grants} == {("roles/cloudkms.signer", mock_id(key))}
        roles = ["localizer", "trainer"] if region.name == config_of(stack).home else ["localizer"]
        assert sorted(g["member"] for g in grants) == sorted(_account(run, region.name, r) for r in roles)


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_each_region_publishes_to_its_own_registry_and_reads_it_through_the_gcp_cdn(
    stack: str, fleet_run: Callable[[str], FleetRun]
) -> None:
    """The Cloud CDN is a GCP home's at models.<domain>, an AWS home's second one at models-gcp."""
    run, config = fleet_run(stack), config_of(stack)
    project = named(run.inventory, f"gcp-{regions_on(stack, Cloud.GCP)[0].name}", "pulumi:providers:gcp").inputs
    on_cdn = config.cdn.enabled
    host = "models" if config.home_region.cloud is Cloud.GCP else "models-gcp"
    for region in regions_on(stack, Cloud.GCP):
        access = run.fleet.regions[region.name].access
        assert access.models is not None
        store = f"gs://{region.name}-registry/{region.name}"
        assert run.value(access.models.store_url) == store
        cdn = f"https://{host}.{config.dns.domain}/{region.name}"
        assert run.value(access.models.read_url) == (cdn if on_cdn else store)
        signer = access.models.signer
        assert run.value(signer.key_ref) == (
            f"gcpkms://projects/{project['project']}/locations/{region.name}/keyRings/"
            f"meridian-{stack}-{region.name}/cryptoKeys/{region.name}-models-signer/cryptoKeyVersions/1"
        )
        assert run.value(signer.public_key_pem) == ED25519_PUBLIC_KEY_PEM  # KMS's answer, passed through
        assert signer.private_key_pem is None  # the private key never leaves KMS
        email = _account(run, region.name, "localizer").removeprefix("serviceAccount:")
        assert run.value(access.localizer_identity.annotations["iam.gke.io/gcp-service-account"]) == email


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_only_a_gcp_home_holds_the_global_registry(stack: str, fleet_run: Callable[[str], FleetRun]) -> None:
    run, config = fleet_run(stack), config_of(stack)
    for region in regions_on(stack, Cloud.GCP):
        access = run.fleet.regions[region.name].access
        if region.name != config.home:
            assert access.global_models is None
            continue
        assert access.global_models is not None and access.models is not None
        assert run.value(access.global_models.store_url) == f"gs://{region.name}-registry/global"
        assert run.value(access.global_models.read_url) == f"https://models.{config.dns.domain}/global"
        assert access.global_models.signer is access.models.signer  # the home's key signs both


def test_without_a_cdn_readers_use_the_buckets_themselves(gcp_eu_without_cdn: FleetRun) -> None:
    run = gcp_eu_without_cdn
    home = config_of("gcp-eu").home
    for region in regions_on("gcp-eu", Cloud.GCP):
        access = run.fleet.regions[region.name].access
        assert access.models is not None
        assert run.value(access.models.read_url) == f"gs://{region.name}-registry/{region.name}"
    global_models = run.fleet.regions[home].access.global_models
    assert global_models is not None
    assert run.value(global_models.read_url) == f"gs://{home}-registry/global"
    assert run.inventory.of_type("gcp:compute/backendBucket:BackendBucket") == []


def test_the_offline_engine_answers_with_a_real_ed25519_public_key() -> None:
    """SubjectPublicKeyInfo of an Ed25519 key (RFC 8410: OID 1.3.101.112, 32 key bytes)."""
    lines = ED25519_PUBLIC_KEY_PEM.strip().splitlines()
    assert lines[0] == "-----BEGIN PUBLIC KEY-----" and lines[-1] == "-----END PUBLIC KEY-----"
    der = base64.b64decode("".join(lines[1:-1]))
    assert der[:12].hex() == "302a300506032b6570032100" and len(der) == 44
