"""An existing cluster (cloud `kubernetes`: on-prem, kind, k3d): nothing is provisioned, the
stack names how to reach it and where its images, models and data live."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_access import ClusterAccess, WorkloadIdentity
from components.config import Region


def data_volume_url(claim: str) -> str:
    """The SuperNode mounts this PersistentVolumeClaim: the region's data stays on its cluster."""
    return f"pvc://{claim}"


@dataclass(frozen=True)
class ExistingClusterArgs:
    region: Region


class ExistingCluster(pulumi.ComponentResource):
    provider: k8s.Provider
    access: ClusterAccess

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:existing_cluster:ExistingCluster", name, None, opts)
        target = args.region.kubernetes
        if target is None:
            raise ValueError(f"region {args.region.name}: cloud kubernetes needs its `kubernetes` block")
        # An explicit context (and file): the program never deploys to whatever is current.
        self.provider = k8s.Provider(
            f"k8s-{args.region.name}",
            context=target.context,
            kubeconfig=target.kubeconfig_path,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.access = ClusterAccess(
            provider=self.provider,
            image_registry=target.image_registry,
            data_url=data_volume_url(target.data_volume_claim),
            model_registry_url=target.model_registry_url,
            # The cluster's own ServiceAccounts and volumes grant access; no cloud identity.
            trainer_identity=WorkloadIdentity(),
            server_identity=WorkloadIdentity(),
            registry_auth=None,  # the builder's own `docker login` for this registry is used
        )
        self.register_outputs({"context": target.context})
