"""Existing clusters (cloud `kubernetes`): nothing is provisioned; each is reached through a
provider pinned to the stack's kubeconfig context, its data is a volume claim, and its models
are signed with a key Pulumi generates for it (no KMS), published to the operator's store."""

from __future__ import annotations

from collections.abc import Callable

from components.cluster_access import ClusterAccess
from components.config import Region
from components.existing_cluster import ExistingCluster, ExistingClusterArgs, data_volume_url
from components.pulumi_internals import is_secret, resolved
from meridian.mocks import Inventory, run_under_mocks
from tests.components.cloud_queries import config_of, named
from workloads import contract


def test_onprem_uses_one_pinned_context_per_cluster_and_no_cloud(inventory_of: Callable[[str], Inventory]) -> None:
    inventory = inventory_of("onprem")
    config = config_of("onprem")
    assert [r for r in inventory.resources if r.type.split(":")[0] in ("aws", "gcp")] == []
    for region in config.regions:
        target = region.kubernetes
        assert target is not None
        provider = named(inventory, f"k8s-{region.name}", "pulumi:providers:kubernetes")
        assert provider.inputs["context"] == target.context
        exported = inventory.outputs["regions"][region.name]
        assert exported["dataUrl"] == data_volume_url(target.data_volume_claim) == f"pvc://{target.data_volume_claim}"
        assert exported["imageRegistry"] == target.image_registry
        assert exported["modelRegistryUrl"] == target.model_registry_url
    assert inventory.outputs["globalModelUrl"] == config.home_region.kubernetes.model_registry_url  # type: ignore[union-attr]


def test_images_for_an_existing_cluster_go_to_its_configured_registry(inventory_of: Callable[[str], Inventory]) -> None:
    inventory = inventory_of("onprem")
    for region in config_of("onprem").regions:
        built = [r for r in inventory.of_type("docker-build:index:Image") if r.name.startswith(f"{region.name}-images")]
        assert built and all(r.inputs["tags"][0].startswith(f"{region.kubernetes.image_registry}/") for r in built)  # type: ignore[union-attr]
        assert all("registries" not in r.inputs for r in built)  # the builder's own login is used


def _built(region: Region, *, home: bool) -> tuple[ClusterAccess, Inventory]:
    """One ExistingCluster alone under the mocks: its hand-off, resolved, and what it registered."""
    built: list[ExistingCluster] = []
    inventory = run_under_mocks(lambda: built.append(ExistingCluster(region.name, ExistingClusterArgs(region, home))))
    return built[0].access, inventory


def test_an_existing_cluster_signs_with_its_own_generated_ed25519_key_mounted_from_a_secret() -> None:
    region = config_of("onprem").regions[1]
    access, inventory = _built(region, home=False)
    key = named(inventory, f"{region.name}-artifact-signing", "tls:index/privateKey:PrivateKey")
    assert key.inputs == {"algorithm": "ED25519"} and key.parent == region.name
    assert access.models is not None
    signer = access.models.signer
    assert signer.key_ref == contract.SIGNING_KEY_PATH == f"{contract.KEYS_MOUNT}/{contract.SIGNING_KEY_FILE}"
    assert resolved(signer.public_key_pem) == key.outputs["publicKeyPem"]
    assert resolved(signer.private_key_pem) == key.outputs["privateKeyPem"]
    # The private half stays a secret in everything derived from it; readers get the public half.
    assert is_secret(signer.private_key_pem) and not is_secret(signer.public_key_pem)
    (cluster,) = inventory.of_type("meridian:existing_cluster:ExistingCluster")
    assert cluster.registered_outputs["signingPublicKeyPem"] == key.outputs["publicKeyPem"]
    assert cluster.secret_registered_outputs == []


def test_an_existing_cluster_publishes_to_its_store_and_is_read_at_its_registry_url() -> None:
    region = config_of("onprem").regions[1]
    target = region.kubernetes
    assert target is not None
    access, _ = _built(region, home=False)
    assert access.models is not None
    assert (access.models.store_url, access.models.read_url) == (target.model_store_url, target.model_registry_url)
    assert access.global_models is None  # only the home hosts the global model


def test_an_existing_home_hosts_the_global_model_beside_its_own_signed_by_its_key() -> None:
    home = config_of("onprem").home_region
    access, _ = _built(home, home=True)
    assert access.global_models is not None and access.global_models == access.models


def test_every_existing_region_of_a_stack_has_its_own_signing_key(inventory_of: Callable[[str], Inventory]) -> None:
    for stack in ("onprem", "local"):
        inventory = inventory_of(stack)
        keys = {
            r.parent for r in inventory.of_type("tls:index/privateKey:PrivateKey") if r.inputs["algorithm"] == "ED25519"
        }
        assert {r.name for r in config_of(stack).regions} <= keys
