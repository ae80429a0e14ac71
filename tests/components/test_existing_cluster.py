"""Existing clusters (cloud `kubernetes`): nothing is provisioned; each is reached through a
provider pinned to the stack's kubeconfig context, and its data is a volume claim."""

from __future__ import annotations

from collections.abc import Callable

from components.existing_cluster import data_volume_url
from meridian.mocks import Inventory
from tests.components.cloud_queries import config_of, named


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
    assert inventory.outputs["modelRegistryUrl"] == config.home_region.kubernetes.model_registry_url  # type: ignore[union-attr]


def test_images_for_an_existing_cluster_go_to_its_configured_registry(inventory_of: Callable[[str], Inventory]) -> None:
    inventory = inventory_of("onprem")
    for region in config_of("onprem").regions:
        built = [r for r in inventory.of_type("docker-build:index:Image") if r.name.startswith(f"{region.name}-images")]
        assert built and all(r.inputs["tags"][0].startswith(f"{region.kubernetes.image_registry}/") for r in built)  # type: ignore[union-attr]
        assert all("registries" not in r.inputs for r in built)  # the builder's own login is used
