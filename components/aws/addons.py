"""EKS add-ons the workloads cannot run without: the EBS CSI driver (with its IRSA role), so
the SuperLink's PersistentVolumeClaim binds, and metrics-server, so the resource metrics API
answers the CPU trigger of KEDA's ScaledObjects (components/k8s/autoscaling.py). EKS installs
neither by itself (GKE runs its own metrics-server; on an existing cluster it is a prerequisite). Both are managed EKS add-ons pinned here, in one
place, and both wait for the node groups: their controllers are Deployments that need nodes,
and an add-on whose pods cannot schedule stays DEGRADED until `pulumi up` times out. The
driver's node DaemonSet tolerates every taint by default (`node.tolerateAllTaints: true` in
its chart's values.yaml, kubernetes-sigs/aws-ebs-csi-driver), so volumes attach on GPU and edge
nodes too; its controller and metrics-server run on the untainted system group.

Sources (read 2026-11-30):
- EBS CSI driver add-on: name `aws-ebs-csi-driver`, IRSA for `kube-system/ebs-csi-controller-sa`
  with the AWS-managed `service-role/AmazonEBSCSIDriverPolicy`
  (https://docs.aws.amazon.com/eks/latest/userguide/add-ons-aws-ebs-csi-driver.html).
- metrics-server is an EKS community add-on named `metrics-server`
  (https://docs.aws.amazon.com/eks/latest/userguide/community-addons.html).
- Versions: `v1.44.0-eksbuild.1` and `v0.8.0-eksbuild.2` are builds EKS has published (seen
  pinned in public Terraform); before a first `up`, confirm each against the stack's
  Kubernetes version with `aws eks describe-addon-versions --addon-name <name>
  --kubernetes-version <version>` and move the pins here together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.account import Account
from components.aws.identity import ServiceAccountRole, ServiceAccountRoleArgs
from components.cluster_access import ServiceAccountRef


@dataclass(frozen=True)
class AddonPin:
    name: str  # the EKS add-on name (`aws eks describe-addon-versions`)
    version: str


EBS_CSI_DRIVER = AddonPin("aws-ebs-csi-driver", "v1.44.0-eksbuild.1")
METRICS_SERVER = AddonPin("metrics-server", "v0.8.0-eksbuild.2")
ADDONS = (EBS_CSI_DRIVER, METRICS_SERVER)

# The driver's controller creates, attaches and deletes volumes: only it gets the AWS role.
EBS_CSI_CONTROLLER = ServiceAccountRef("kube-system", "ebs-csi-controller-sa")
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"  # AWS-managed, under arn:<partition>:iam::aws:policy/
EBS_PROVISIONER = "ebs.csi.aws.com"
# gp3 (baseline 3000 IOPS, 125 MiB/s whatever the size), encrypted at rest; parameters of the
# driver's StorageClass (https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md)
EBS_GP3_ENCRYPTED = {"type": "gp3", "encrypted": "true"}


@dataclass(frozen=True)
class EksAddonsArgs:
    cluster_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]  # without `https://`
    account: Account
    node_groups: Sequence[pulumi.Resource]  # the add-ons' pods need somewhere to run


class EksAddons(pulumi.ComponentResource):
    ebs_csi_driver: aws.eks.Addon
    metrics_server: aws.eks.Addon
    ebs_csi_role: ServiceAccountRole

    def __init__(self, name: str, args: EksAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:EksAddons", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ebs_csi_role = ServiceAccountRole(
            f"{name}-ebs-csi",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                service_accounts=(EBS_CSI_CONTROLLER,),
                statements=[],
                managed_policy_arns=(
                    args.account.partition.apply(lambda p: f"arn:{p}:iam::aws:policy/{EBS_CSI_POLICY}"),
                ),
            ),
            opts=child,
        )

        def addon(suffix: str, pin: AddonPin, role: ServiceAccountRole | None = None) -> aws.eks.Addon:
            return aws.eks.Addon(
                f"{name}-{suffix}",
                cluster_name=args.cluster_name,
                addon_name=pin.name,
                addon_version=pin.version,
                service_account_role_arn=role.role.arn if role else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                # its controller acts as soon as it runs: nodes to run on, and its permissions
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*args.node_groups, *(role.attachments if role else [])]
                ),
            )

        self.ebs_csi_driver = addon("ebs-csi-driver", EBS_CSI_DRIVER, self.ebs_csi_role)
        self.metrics_server = addon("metrics-server", METRICS_SERVER)
        self.register_outputs(
            {
                "ebsCsiDriverVersion": self.ebs_csi_driver.addon_version,
                "metricsServerVersion": self.metrics_server.addon_version,
                "ebsCsiRoleArn": self.ebs_csi_role.role.arn,
            }
        )
