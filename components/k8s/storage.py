"""The cluster's default StorageClass, so a PersistentVolumeClaim that names no class (the
SuperLink's state) binds. A cloud region gives the provisioner and its parameters (on EKS the
EBS CSI driver: gp3, encrypted); `WaitForFirstConsumer` creates each volume in the zone of the
node its pod lands on, never in a zone the pod cannot reach.

EKS clusters from Kubernetes 1.30 on mark no StorageClass as default (the gp2 class is no
longer annotated), so without this one such a claim stays Pending (EKS release notes,
Kubernetes 1.30: https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions-extended.html,
read 2026-11-30). The EBS add-on's own `defaultStorageClass.enabled` would make one too; ours
is explicit about encryption and carries the stack's labels. The annotation is Kubernetes' own:
https://kubernetes.io/docs/tasks/administer-cluster/change-default-storage-class/
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.labels import metadata

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class DefaultStorageClassArgs:
    provider: k8s.Provider  # the cluster's
    name: str  # the StorageClass's name, e.g. "gp3"
    provisioner: str  # the CSI driver, e.g. ebs.csi.aws.com
    parameters: Mapping[str, str]  # the driver's own, e.g. volume type and encryption
    labels: Mapping[str, str] = field(default_factory=dict)  # the stack's (owner, stack, cost-center)
    depends_on: tuple[pulumi.Resource, ...] = ()  # the driver, so a claim never outruns it


class DefaultStorageClass(pulumi.ComponentResource):
    storage_class: k8s.storage.v1.StorageClass

    def __init__(self, name: str, args: DefaultStorageClassArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:DefaultStorageClass", name, None, opts)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=metadata(args.name, None, args.labels, {DEFAULT_CLASS_ANNOTATION: "true"}),
            provisioner=args.provisioner,
            parameters=dict(args.parameters),
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy="Delete",  # a claim's volume goes with it: no orphaned, billed volumes
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"name": self.storage_class.metadata.name})
