"""Private GKE per GCP region, as every shipped stack asks: private nodes, the API private or
open only to the stack's CIDRs, Workload Identity, shielded nodes, a release channel, secrets
under a customer key; a GPU pool with a managed driver and the stack's bounds, edge pools."""

from __future__ import annotations

from components.catalog import (
    GCP_ACCELERATOR_TYPES,
    GCP_GPU_MACHINES,
    GCP_GPU_ZONES,
    GCP_REGIONS,
    Cloud,
    edge_location_belongs,
    gcp_gpu_zones,
)
from components.cluster_access import ACCELERATOR_LABEL, CAPACITY_LABEL, EDGE_SITE_LABEL, GPU_TAINT_KEY, POOL_LABEL
from components.gcp.cluster import RELEASE_CHANNEL
from meridian.mocks import Inventory
from tests.components.cloud_queries import config_of, mock_id, named, regions_on

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"


def test_each_gcp_region_has_one_private_cluster_in_that_region(stack: str, inventory: Inventory) -> None:
    regions = regions_on(stack, Cloud.GCP)
    assert sorted(c.region or "" for c in inventory.of_type(CLUSTER)) == sorted(r.name for r in regions)
    cidrs = config_of(stack).network.api_allowed_cidrs
    for region in regions:
        cluster = named(inventory, f"{region.name}-gke", CLUSTER)
        inputs = cluster.inputs
        assert cluster.provider == f"gcp-{region.name}" and inputs["location"] == region.name
        private = inputs["privateClusterConfig"]
        assert private["enablePrivateNodes"] is True
        assert private["enablePrivateEndpoint"] is (not cidrs)
        authorized = inputs["masterAuthorizedNetworksConfig"]
        assert [b["cidrBlock"] for b in authorized.get("cidrBlocks", [])] == cidrs
        assert authorized["gcpPublicCidrsAccessEnabled"] is False
        assert inputs["removeDefaultNodePool"] is True


def test_identity_hardening_and_encryption(stack: str, inventory: Inventory) -> None:
    project = config_of(stack)
    for region in regions_on(stack, Cloud.GCP):
        inputs = named(inventory, f"{region.name}-gke", CLUSTER).inputs
        assert inputs["workloadIdentityConfig"]["workloadPool"].endswith(".svc.id.goog")
        assert inputs["enableShieldedNodes"] is True
        assert inputs["releaseChannel"] == {"channel": RELEASE_CHANNEL}
        assert inputs["datapathProvider"] == "ADVANCED_DATAPATH"  # enforces NetworkPolicies
        key = named(inventory, f"{region.name}-gke-secrets", "gcp:kms/cryptoKey:CryptoKey")
        assert inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": mock_id(key)}
        assert key.inputs["rotationPeriod"] == "7776000s"
        grant = named(inventory, f"{region.name}-gke-secrets", "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
        assert grant.inputs["member"].endswith("@container-engine-robot.iam.gserviceaccount.com")
        # The cluster's labels are the provider's defaults, as the engine reports them.
        labels = named(inventory, f"{region.name}-gke", CLUSTER).outputs["pulumiLabels"]
        assert labels["stack"] == stack and project.tags.owner.lower() in labels.values()


def test_every_pool_runs_shielded_nodes_behind_the_metadata_server(stack: str, inventory: Inventory) -> None:
    for pool in inventory.of_type(POOL):
        node = pool.inputs["nodeConfig"]
        assert node["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert node["serviceAccount"].startswith("nodes-")  # its own account, not the default one
        assert pool.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}


def test_gpu_pools_carry_the_stacks_accelerator_bounds_and_managed_driver(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        gpu = region.gpu
        primary = named(inventory, f"{region.name}-gke-{'gpu-spot' if gpu.spot else 'gpu'}", POOL).inputs
        node = primary["nodeConfig"]
        (accelerator,) = node["guestAccelerators"]
        assert accelerator["type"] == GCP_ACCELERATOR_TYPES[gpu.accelerator]
        assert accelerator["count"] == region.gpus_per_node
        assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
        assert node["machineType"] == gpu.machine_type and node["spot"] is gpu.spot
        assert node["labels"][ACCELERATOR_LABEL] == gpu.accelerator.value and node["labels"][POOL_LABEL] == "gpu"
        assert {"key": GPU_TAINT_KEY, "value": "present", "effect": "NO_SCHEDULE"} in node["taints"]
        assert primary["autoscaling"]["minNodeCount"] == gpu.min
        assert primary["autoscaling"]["maxNodeCount"] == gpu.max
        assert primary["initialNodeCount"] == gpu.desired
        assert len(primary["nodeLocations"]) == 1  # one zone: the bounds are exact node counts
        fallbacks = [p for p in inventory.of_type(POOL) if p.name == f"{region.name}-gke-gpu-on-demand"]
        assert len(fallbacks) == (1 if gpu.on_demand_fallback else 0)


def test_each_edge_site_gets_a_cpu_pool_in_its_zone(stack: str, inventory: Inventory) -> None:
    edge = [p for p in inventory.of_type(POOL) if p.inputs["nodeConfig"]["labels"][POOL_LABEL] == "edge"]
    sites = [(r, s) for r in regions_on(stack, Cloud.GCP) for s in r.edge_sites]
    assert len(edge) == len(sites)
    for region, site in sites:
        pool = named(inventory, f"{region.name}-gke-edge-{site.name}", POOL).inputs
        assert pool["nodeLocations"] == [site.location]
        assert pool["nodeCount"] == site.capacity
        node = pool["nodeConfig"]
        assert node["machineType"] == region.edge_machine(site) and "guestAccelerators" not in node
        assert node["labels"][EDGE_SITE_LABEL] == site.name and node["labels"][CAPACITY_LABEL] == "on-demand"
        assert {"key": EDGE_SITE_LABEL, "value": site.name, "effect": "NO_SCHEDULE"} in node["taints"]


def test_gpu_pools_sit_in_a_zone_that_offers_their_accelerator(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.GCP):
        offered = gcp_gpu_zones(region.name, region.gpu.accelerator)
        pools = [p for p in inventory.of_type(POOL) if p.name.startswith(f"{region.name}-gke-gpu")]
        assert pools
        for pool in pools:
            assert pool.inputs["nodeLocations"] == [offered[0]]  # the catalog's first, stable across runs


def test_the_gpu_zone_catalog_names_zones_of_catalog_regions() -> None:
    for region, offers in GCP_GPU_ZONES.items():
        assert region in GCP_REGIONS
        for accelerator, zones in offers.items():
            assert any(accelerator in m.accelerators for m in GCP_GPU_MACHINES.values())
            assert zones and all(edge_location_belongs(Cloud.GCP, region, z) for z in zones)
