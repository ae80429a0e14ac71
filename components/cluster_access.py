"""The hand-off from a region's infrastructure to the Kubernetes layer deployed on it.

A cloud region (components/aws, components/gcp) or an existing cluster (cloud `kubernetes`)
produces one `ClusterAccess`; components/k8s deploys the workloads through it and never
needs to know which cloud it is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class ServiceAccountRef:
    """A Kubernetes ServiceAccount that a cloud identity trusts (IRSA trust, GKE WI binding)."""

    namespace: str
    name: str

    @property
    def subject(self) -> str:
        """The token subject the cloud checks: `system:serviceaccount:<ns>:<name>`."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def workload_namespace(region: str) -> str:
    """Each region's workloads run in their own namespace (regions may share a cluster)."""
    return f"meridian-{region}"


# The cloud identities trust exactly these ServiceAccounts; components/k8s names its
# ServiceAccounts after its apps in the region's namespace (tests hold both sides together).
TRAINER_SERVICE_ACCOUNT_NAMES = ("superlink", "supernode")  # aggregator (home) and nodes
SERVER_SERVICE_ACCOUNT_NAME = "server"
LOCALIZER_SERVICE_ACCOUNT_NAME = "localizer"  # fine-tunes, signs and publishes the region's variants


def trainer_service_accounts(region: str) -> tuple[ServiceAccountRef, ...]:
    return tuple(ServiceAccountRef(workload_namespace(region), n) for n in TRAINER_SERVICE_ACCOUNT_NAMES)


def server_service_accounts(region: str) -> tuple[ServiceAccountRef, ...]:
    return (ServiceAccountRef(workload_namespace(region), SERVER_SERVICE_ACCOUNT_NAME),)


def localizer_service_accounts(region: str) -> tuple[ServiceAccountRef, ...]:
    return (ServiceAccountRef(workload_namespace(region), LOCALIZER_SERVICE_ACCOUNT_NAME),)


# Node labels and taints every cloud puts on its pools, so components/k8s schedules the same
# way everywhere. GPU nodes also carry the standard `nvidia.com/gpu` NoSchedule taint.
POOL_LABEL = "meridian.io/pool"  # "system" | "gpu" | "edge"
ACCELERATOR_LABEL = "meridian.io/accelerator"  # catalog.Accelerator value, on GPU nodes
# "spot" | "on-demand"; not on a Karpenter pool that mixes both (its nodes say theirs in
# `karpenter.sh/capacity-type`)
CAPACITY_LABEL = "meridian.io/capacity"
EDGE_SITE_LABEL = "meridian.io/edge-site"  # the edge site's name; also a NoSchedule taint key
GPU_TAINT_KEY = "nvidia.com/gpu"


@dataclass(frozen=True)
class WorkloadIdentity:
    """Cloud identity bound to a Kubernetes ServiceAccount (IRSA role or GCP service account).

    `annotations` go on the ServiceAccount: `eks.amazonaws.com/role-arn` on AWS,
    `iam.gke.io/gcp-service-account` on GCP, nothing on an existing cluster.
    """

    annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactSigner:
    """How a region signs what it publishes, and the public key that verifies it.

    `key_ref` is what the workloads' `--signing-key` takes: `awskms:///<key arn>` or
    `gcpkms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>/cryptoKeyVersions/<n>` where
    the cloud's KMS signs Ed25519 (the private key never leaves it); elsewhere a PEM path inside
    the pod, mounted from `private_key_pem` (a Pulumi secret) on clusters without a KMS.
    """

    key_ref: pulumi.Input[str]
    public_key_pem: pulumi.Input[str]
    private_key_pem: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class ModelRegistry:
    """Signed artifacts in one residency zone: one region's variants, or the home's global model.

    `store_url` is the fsspec URL publishers write to (`s3://<bucket>/<prefix>`,
    `gs://<bucket>/<prefix>`); `read_url` is how readers reach it: its CDN path
    (`https://<cdn host>/<prefix>`) or, with the CDN off, `store_url` itself.
    """

    store_url: pulumi.Input[str]
    read_url: pulumi.Input[str]
    signer: ArtifactSigner


@dataclass(frozen=True)
class ClusterAccess:
    provider: k8s.Provider  # explicit provider for this cluster: never the ambient kubeconfig
    image_registry: pulumi.Input[str]  # where this region's images are pushed, e.g. ECR repo prefix
    data_url: pulumi.Input[str]  # s3://bucket, gs://bucket, or pvc://<claim> on an existing cluster
    trainer_identity: WorkloadIdentity  # may read this region's data bucket, nothing else
    server_identity: WorkloadIdentity  # may read this region's model registry, nothing else
    # The model pipeline: the region's own registry, in its residency zone (its localizer publishes
    # there, its servers and edges read it and trust its signer's public key), and the identity of
    # the localizer (reads the region's data and the global model, writes and signs its registry).
    models: ModelRegistry
    localizer_identity: WorkloadIdentity
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # e.g. the GPU node pool
    # credentials to push images to `image_registry`; None where the builder's own login is used
    registry_auth: docker_build.RegistryArgs | None = None
    # where the image builder keeps its layer cache (`<cache registry>/<image>:buildcache`, a
    # tag rewritten on every build); None: image_registry, which exempts that tag from
    # immutability (ECR). Artifact Registry cannot exempt a tag, so GCP gives a mutable one.
    build_cache_registry: pulumi.Input[str] | None = None
    # Home only: where the run publishes the global model, which every region's localizer reads.
    global_models: ModelRegistry | None = None
