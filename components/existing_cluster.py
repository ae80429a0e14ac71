"""An existing cluster (cloud `kubernetes`: on-prem, kind, k3d): nothing is provisioned, the
stack names how to reach it and where its images, models and data live.

Such a cluster has no cloud KMS, so its region signs what it publishes with an Ed25519 key that
Pulumi generates (pulumi-tls, one per region): the private half lives only in the stack's state,
encrypted as a secret, and reaches the localizer as a PEM file mounted from a Kubernetes Secret
(`key_ref`, a path in the pod); readers get the public half only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.cluster_access import ArtifactSigner, ClusterAccess, ModelRegistry, WorkloadIdentity
from components.config import Region
from workloads import contract

# Where the localizer (and, at home, the run) finds the region's private key: the Secret made
# from `ArtifactSigner.private_key_pem` is mounted at contract.KEYS_MOUNT.


def data_volume_url(claim: str) -> str:
    """The SuperNode mounts this PersistentVolumeClaim: the region's data stays on its cluster."""
    return f"pvc://{claim}"


@dataclass(frozen=True)
class ExistingClusterArgs:
    region: Region
    home: bool = False  # the home region also hosts the global model's registry


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
        key = tls.PrivateKey(
            f"{args.region.name}-artifact-signing", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self)
        )
        signer = ArtifactSigner(
            key_ref=contract.SIGNING_KEY_PATH, public_key_pem=key.public_key_pem, private_key_pem=key.private_key_pem
        )
        # The operator's store and the URL that serves it: the region's artifacts and, at home,
        # the global model sit side by side (their paths carry the region, or `global`).
        models = ModelRegistry(store_url=target.model_store_url, read_url=target.model_registry_url, signer=signer)
        self.access = ClusterAccess(
            provider=self.provider,
            image_registry=target.image_registry,
            data_url=data_volume_url(target.data_volume_claim),
            # The cluster's own ServiceAccounts and volumes grant access; no cloud identity.
            trainer_identity=WorkloadIdentity(),
            server_identity=WorkloadIdentity(),
            registry_auth=None,  # the builder's own `docker login` for this registry is used
            models=models,
            localizer_identity=WorkloadIdentity(),
            global_models=models if args.home else None,
        )
        self.register_outputs({"context": target.context, "signingPublicKeyPem": key.public_key_pem})
