"""GKE: a private cluster (private nodes; the API private or open only to named CIDRs) with
Workload Identity, shielded nodes, a release channel, secrets encrypted with a customer key and
Dataplane V2 (which enforces NetworkPolicies), plus its node pools: system, GPU (managed driver,
spot first, an on-demand fallback when asked) and one CPU pool per edge site in its zone."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.catalog import GCP_ACCELERATOR_TYPES
from components.cluster_access import ACCELERATOR_LABEL, CAPACITY_LABEL, EDGE_SITE_LABEL, GPU_TAINT_KEY, POOL_LABEL
from components.config import Region
from components.gcp.keys import KeyRing
from components.gcp.network import PODS_RANGE, SERVICES_RANGE, GcpNetwork
from components.gcp.project import Project
from components.kubeconfig import exec_kubeconfig

RELEASE_CHANNEL = "REGULAR"
SYSTEM_NODES = (1, 3)  # total min, max over the region's zones
NODE_ROLES = (  # what a node itself needs; workloads get their own accounts
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"  # IAM decides, not scopes


@dataclass(frozen=True)
class GkeClusterArgs:
    cluster_name: str
    region: Region
    project: Project
    network: GcpNetwork
    keys: KeyRing
    api_allowed_cidrs: list[str]  # empty: the API endpoint is private only
    # GPU pools sit in one zone, one that offers the accelerator (components/catalog.py
    # GCP_GPU_ZONES), so min/desired/max are exact counts
    gpu_zone: str
    account_id_prefix: str = "meridian"
    # The node VMs' labels: the provider's default labels reach top-level `labels` only, not
    # the nested node config, so the pools set them themselves.
    node_labels: dict[str, str] = field(default_factory=dict)


class GkeCluster(pulumi.ComponentResource):
    cluster: gcp.container.Cluster
    provider: k8s.Provider
    context: str
    gpu_node_pools: list[gcp.container.NodePool]
    edge_node_pools: dict[str, gcp.container.NodePool]
    node_pools: list[gcp.container.NodePool]

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region, project = args.region, args.project

        node_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            project=project.id,
            account_id=f"{args.account_id_prefix}-nodes",
            display_name=f"GKE nodes of {args.cluster_name}",
            opts=child,
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[-1]}",
                project=project.id,
                role=role,
                member=node_account.member,
                opts=child,
            )

        secrets_key, secrets_grant = args.keys.key(
            f"{name}-secrets",
            encrypter=project.service_agent("container-engine-robot"),
        )
        public = bool(args.api_allowed_cidrs)
        self.cluster = gcp.container.Cluster(
            name,
            name=args.cluster_name,
            project=project.id,
            location=region.name,  # regional: the control plane survives a zone outage
            network=args.network.network.id,
            subnetwork=args.network.subnet.id,
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=True,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=RELEASE_CHANNEL),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=not public,
                master_ipv4_cidr_block=args.network.addressing.control_plane,
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=c, display_name=c)
                    for c in args.api_allowed_cidrs
                ],
                gcp_public_cidrs_access_enabled=False,
            ),
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=PODS_RANGE, services_secondary_range_name=SERVICES_RANGE
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=project.workload_pool
            ),
            enable_shielded_nodes=True,
            database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(state="ENCRYPTED", key_name=secrets_key.id),
            datapath_provider="ADVANCED_DATAPATH",
            # GKE installs and runs the Gateway API (the region's front door, components/k8s/gateway.py)
            gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(channel="CHANNEL_STANDARD"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secrets_grant]),
        )

        def pool(
            suffix: str,
            *,
            machine_type: str,
            spot: bool,
            labels: dict[str, str],
            taints: list[gcp.container.NodePoolNodeConfigTaintArgs],
            node_locations: list[pulumi.Input[str]] | None,
            initial: int,
            autoscaling: gcp.container.NodePoolAutoscalingArgs | None,
            accelerators: list[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs] | None = None,
        ) -> gcp.container.NodePool:
            return gcp.container.NodePool(
                f"{name}-{suffix}",
                project=project.id,
                cluster=self.cluster.id,
                location=region.name,
                node_locations=node_locations,
                initial_node_count=initial if autoscaling else None,
                node_count=None if autoscaling else initial,
                autoscaling=autoscaling,
                management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
                node_config=gcp.container.NodePoolNodeConfigArgs(
                    machine_type=machine_type,
                    spot=spot,
                    guest_accelerators=accelerators,
                    labels={**labels, CAPACITY_LABEL: "spot" if spot else "on-demand"},
                    taints=taints,
                    service_account=node_account.email,
                    oauth_scopes=[CLOUD_PLATFORM],
                    shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                        enable_secure_boot=True, enable_integrity_monitoring=True
                    ),
                    # Pods see the GKE metadata server: Workload Identity, never the node's account.
                    workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"
                    ),
                    resource_labels=args.node_labels,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # the cluster autoscaler owns the size once the pool exists
                    ignore_changes=["initialNodeCount"],
                ),
            )

        system = pool(
            "system",
            machine_type=region.system_machine,
            spot=False,
            labels={POOL_LABEL: "system"},
            taints=[],
            node_locations=None,
            initial=1,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=SYSTEM_NODES[0], total_max_node_count=SYSTEM_NODES[1]
            ),
        )

        gpu = region.gpu
        accelerators = [
            gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                type=GCP_ACCELERATOR_TYPES[gpu.accelerator],
                count=region.gpus_per_node,
                gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                    gpu_driver_version="LATEST"  # GKE installs and upgrades the NVIDIA driver
                ),
            )
        ]
        gpu_labels = {POOL_LABEL: "gpu", ACCELERATOR_LABEL: gpu.accelerator.value}
        gpu_taints = [
            gcp.container.NodePoolNodeConfigTaintArgs(key=GPU_TAINT_KEY, value="present", effect="NO_SCHEDULE")
        ]

        def gpu_pool(suffix: str, spot: bool, bounds: tuple[int, int, int]) -> gcp.container.NodePool:
            low, desired, high = bounds
            return pool(
                suffix,
                machine_type=gpu.machine_type or "",
                spot=spot,
                labels=gpu_labels,
                taints=gpu_taints,
                node_locations=[args.gpu_zone],
                initial=desired,
                autoscaling=gcp.container.NodePoolAutoscalingArgs(
                    min_node_count=low, max_node_count=high, location_policy="ANY" if spot else "BALANCED"
                ),
                accelerators=accelerators,
            )

        self.gpu_node_pools = [gpu_pool("gpu-spot" if gpu.spot else "gpu", gpu.spot, (gpu.min, gpu.desired, gpu.max))]
        if gpu.on_demand_fallback:
            self.gpu_node_pools.append(gpu_pool("gpu-on-demand", False, (0, 0, gpu.max)))

        self.edge_node_pools = {
            site.name: pool(
                f"edge-{site.name}",
                machine_type=region.edge_machine(site),
                spot=False,
                labels={POOL_LABEL: "edge", EDGE_SITE_LABEL: site.name},
                taints=[
                    gcp.container.NodePoolNodeConfigTaintArgs(
                        key=EDGE_SITE_LABEL, value=site.name, effect="NO_SCHEDULE"
                    )
                ],
                node_locations=[site.location],
                initial=site.capacity,
                autoscaling=None,
            )
            for site in region.edge_sites
        }
        self.node_pools = [system, *self.gpu_node_pools, *self.edge_node_pools.values()]

        # gcloud's own context naming, so operators' kubeconfigs and ours agree.
        self.context = f"gke_{project.id}_{region.name}_{args.cluster_name}"
        kubeconfig = pulumi.Output.all(self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate).apply(
            # gke-gcloud-auth-plugin authenticates: no long-lived credential in the state
            lambda v: exec_kubeconfig(
                self.context,
                server=f"https://{v[0]}",
                ca_data=v[1] or "",
                command="gke-gcloud-auth-plugin",
                provideClusterInfo=True,
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(kubeconfig),
            context=self.context,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )
        self.register_outputs({"cluster": self.cluster.name, "endpoint": self.cluster.endpoint})
