"""Karpenter on EKS: the region's GPU capacity, launched for pending GPU pods and removed when
idle, spot first with on-demand as the fallback, never above the stack's GPU ceiling.

Fixed-size managed node groups cannot fall back from spot to on-demand by themselves (that
needs an autoscaler with a priority expander, which the fleet never had); Karpenter does it in
one NodePool. What it takes, per region:
- an SQS interruption queue (SSE, TLS only) fed by EventBridge rules, so nodes drain before a
  spot reclaim, a rebalance recommendation, a scheduled maintenance or an instance stop;
- the controller's IRSA role (`kube-system:karpenter`), least privilege: EC2 launches and
  deletions only of resources tagged for this cluster and a NodePool, `iam:PassRole` only on the
  node role, SQS only on its queue. We hand Karpenter our own instance profile, so the role gets
  no instance-profile write actions (it keeps the two reads its clean-up runs on every delete);
- a node role of its own (joined to the cluster by an EC2_LINUX access entry) in that profile;
- the charts `karpenter-crd` (Helm keeps the CRDs current) and `karpenter` (`skip_crds`), pinned,
  the controller on the system node group (which stays a managed node group for this reason).
  `helm.v3.Release`, as the GPU device plugin: Helm installs atomically and rolls back, and the
  offline engine records one resource with its pinned inputs. `helm.v4.Chart` renders in the
  engine, pulling the chart from the OCI registry on every preview (out of reach offline);
- per GPU pool an `EC2NodeClass` (EKS-optimized AL2023 AMI by alias: Karpenter picks the NVIDIA
  variant for GPU instance types; private subnets by discovery tag; the cluster security group)
  and a `NodePool` (the pool's instance type and capacity types, the GPU taint and pool labels,
  `limits: nvidia.com/gpu` = the pool's max nodes x GPUs per node).

Sources (read 2026-11-30), aws/karpenter-provider-aws at tag v1.14.1 (bde00654c):
- IAM, queue and rules: website/content/en/v1.14/getting-started/getting-started-with-karpenter/
  cloudformation.yaml; helm values: charts/karpenter/values.yaml; settings: reference/settings.md.
- Spot before on-demand in one NodePool, with a 3-minute cache of unavailable offerings:
  website/content/en/v1.14/concepts/nodepools.md ("Capacity Type").
- `al2023@<version>` resolves standard, nvidia and neuron variants from SSM:
  pkg/providers/amifamily/al2023.go; `latest` "is not recommended for production" (the CRD).
- The finalizer of an EC2NodeClass lists and reads instance profiles even when it names its own
  (pkg/controllers/nodeclass/controller.go `cleanupManagedInstanceProfiles`).

Not here: GpuPool.min/desired. Karpenter holds no idle nodes (a static NodePool or a
CapacityBuffer would, both alpha in v1.14): GPU nodes follow the GPU pods (the inference
Deployment's replicas). Account prerequisite: the EC2 Spot service-linked role
(`aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`, once per account).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.account import Account
from components.aws.cluster import worker_node_role
from components.aws.identity import ServiceAccountRole, ServiceAccountRoleArgs
from components.catalog import GPU_MACHINES, Cloud
from components.cluster_access import (
    ACCELERATOR_LABEL,
    CAPACITY_LABEL,
    GPU_TAINT_KEY,
    POOL_LABEL,
    ServiceAccountRef,
)
from components.config import GpuPool

CHART_REPO = "oci://public.ecr.aws/karpenter"
VERSION = "1.14.1"  # chart and controller; the CRDs' schema is checked at this tag (tests)
NAMESPACE = "kube-system"  # as Karpenter's guides install it: next to the cluster's own controllers
CONTROLLER = ServiceAccountRef(NAMESPACE, "karpenter")  # the chart's ServiceAccount (its fullname)
AMI_ALIAS = "al2023@v20260520"  # an AL2023 release Karpenter's own e2e suite uses at the tag
DISCOVERY_TAG = "karpenter.sh/discovery"  # on the private subnets Karpenter may launch into
NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
GPU_POOL = "gpu"  # the NodePool's and EC2NodeClass's name (cluster-scoped, one GPU pool per cluster)
ROOT_VOLUME_GIB = 100  # CUDA images are several GB; the AL2023 default root volume is 20 GiB
CONSOLIDATE_AFTER = "5m"  # an emptied GPU node lingers briefly: the next GPU pod often follows

# EventBridge detail-types Karpenter acts on (source `aws.ec2`, or `aws.health`).
INTERRUPTION_EVENTS = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "scheduled-change": ("aws.health", "AWS Health Event"),
}
QUEUE_RETENTION_SECONDS = 300  # an interruption warning is stale after its 2 minutes


def capacity_types(pool: GpuPool) -> list[str]:
    """Karpenter's `karpenter.sh/capacity-type` values, in the order it prefers them."""
    if not pool.spot:
        return ["on-demand"]
    return ["spot", "on-demand"] if pool.on_demand_fallback else ["spot"]


def gpu_limit(pool: GpuPool) -> int:
    """The pool's GPU ceiling: its max nodes times the GPUs of its instance type."""
    return pool.max * GPU_MACHINES[Cloud.AWS][pool.machine_type or ""].gpus


def gpu_node_labels(pool: GpuPool) -> dict[str, str]:
    """The labels components/k8s schedules by. CAPACITY_LABEL only where the pool has one
    capacity type; a mixed pool's nodes say theirs in Karpenter's `karpenter.sh/capacity-type`."""
    labels = {POOL_LABEL: "gpu", ACCELERATOR_LABEL: pool.accelerator.value}
    (only, *more) = capacity_types(pool)
    return labels if more else {**labels, CAPACITY_LABEL: only}


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str  # physical name: the queue's name and the discovery tag's value
    region: str
    gpu: GpuPool
    cluster_security_group_id: pulumi.Input[str]  # EKS's own group, which every node needs
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]  # without `https://`
    account: Account
    k8s_provider: k8s.Provider
    system_nodes: pulumi.Resource  # where the controller runs
    tags: dict[str, str]  # the stack's: Karpenter puts them on what it launches
    labels: dict[str, str]  # the stack's Kubernetes labels


class Karpenter(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    controller_role: ServiceAccountRole
    node_role: aws.iam.Role
    node_class: k8s.apiextensions.CustomResource
    node_pool: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition, account_id = args.account.partition, args.account.id

        self.queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=args.cluster_name,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=self.queue.url,
            policy=pulumi.Output.json_dumps(_queue_policy(self.queue.arn)),
            opts=child,
        )
        for suffix, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{suffix}",
                event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{suffix}", rule=rule.name, arn=self.queue.arn, target_id="karpenter-queue", opts=child
            )

        self.node_role, node_policies = worker_node_role(f"{name}-nodes", partition, child)
        profile = aws.iam.InstanceProfile(f"{name}-nodes", role=self.node_role.name, opts=child)
        # Nodes join by their role; without this entry the API server refuses their kubelets.
        access = aws.eks.AccessEntry(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )

        self.controller_role = ServiceAccountRole(
            f"{name}-controller",
            ServiceAccountRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                service_accounts=(CONTROLLER,),
                statements=controller_statements(
                    cluster=args.cluster_name,
                    region=args.region,
                    partition=partition,
                    account_id=account_id,
                    node_role_arn=self.node_role.arn,
                    queue_arn=self.queue.arn,
                ),
            ),
            opts=child,
        )

        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.k8s_provider)
        crds = k8s.helm.v3.Release(
            f"{name}-crd",
            name="karpenter-crd",
            chart=f"{CHART_REPO}/karpenter-crd",
            version=VERSION,
            namespace=NAMESPACE,
            atomic=True,
            opts=on_cluster,
        )
        controller = k8s.helm.v3.Release(
            f"{name}-controller",
            name="karpenter",
            chart=f"{CHART_REPO}/karpenter",
            version=VERSION,
            namespace=NAMESPACE,
            skip_crds=True,  # karpenter-crd owns them, so they follow upgrades
            atomic=True,
            values={
                "settings": {
                    "clusterName": args.cluster_name,
                    "interruptionQueue": self.queue.name,
                },
                "serviceAccount": {"annotations": self.controller_role.identity.annotations},
                "nodeSelector": {POOL_LABEL: "system"},
                "controller": {
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"memory": "1Gi"},
                    }
                },
            },
            opts=pulumi.ResourceOptions.merge(
                on_cluster,
                # its permissions stay until it has terminated its nodes (destroy runs in reverse)
                pulumi.ResourceOptions(
                    depends_on=[crds, args.system_nodes, access, *node_policies, self.controller_role]
                ),
            ),
        )

        # Karpenter's finalizers clean up these objects' nodes: delete them while it runs.
        after_controller = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[controller]))
        self.node_class = k8s.apiextensions.CustomResource(
            f"{name}-{GPU_POOL}-class",
            api_version=NODE_CLASS_API,
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GPU_POOL, labels=args.labels),
            spec=node_class_spec(args.cluster_name, profile.name, args.cluster_security_group_id, args.tags),
            opts=after_controller,
        )
        self.node_pool = k8s.apiextensions.CustomResource(
            f"{name}-{GPU_POOL}-pool",
            api_version=NODE_POOL_API,
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GPU_POOL, labels=args.labels),
            spec=node_pool_spec(args.gpu),
            opts=pulumi.ResourceOptions.merge(after_controller, pulumi.ResourceOptions(depends_on=[self.node_class])),
        )
        self.register_outputs(
            {
                "interruptionQueue": self.queue.name,
                "controllerRoleArn": self.controller_role.role.arn,
                "nodeRoleArn": self.node_role.arn,
            }
        )


def node_class_spec(
    cluster: str,
    instance_profile: pulumi.Input[str],
    security_group_id: pulumi.Input[str],
    tags: dict[str, str],
) -> dict[str, Any]:
    return {
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "instanceProfile": instance_profile,
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster}}],
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": f"{ROOT_VOLUME_GIB}Gi", "volumeType": "gp3", "encrypted": True},
            }
        ],
        "tags": tags,
    }


def node_pool_spec(pool: GpuPool) -> dict[str, Any]:
    return {
        "template": {
            "metadata": {"labels": gpu_node_labels(pool)},
            "spec": {
                "nodeClassRef": {"group": NODE_CLASS_API.split("/")[0], "kind": "EC2NodeClass", "name": GPU_POOL},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [pool.machine_type]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types(pool)},
                ],
                "taints": [{"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}],
            },
        },
        "limits": {GPU_TAINT_KEY: gpu_limit(pool)},
        # Underutilized too, so an on-demand fallback node is replaced by spot once spot returns.
        "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": CONSOLIDATE_AFTER},
    }


def _queue_policy(queue_arn: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeSends",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def controller_statements(
    *,
    cluster: str,
    region: str,
    partition: pulumi.Input[str],
    account_id: pulumi.Input[str],
    node_role_arn: pulumi.Input[str],
    queue_arn: pulumi.Input[str],
) -> list[dict[str, Any]]:
    """The v1.14 reference policy (cloudformation.yaml) less instance-profile writes and zonal
    shift (off), for one cluster in one region."""

    def ec2(resource: str, account: pulumi.Input[str] = "*") -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:ec2:{1}:{2}:{3}", partition, region, account, resource)

    launched = [
        ec2(f"{r}/*")
        for r in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    of_a_nodepool = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    request_tags = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster,
    }
    for_a_nodepool = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    profiles = pulumi.Output.format("arn:{0}:iam::{1}:instance-profile/*", partition, account_id)
    return [
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                ec2("image/*", ""),
                ec2("snapshot/*", ""),
                *(ec2(r) for r in ("security-group/*", "subnet/*", "capacity-reservation/*", "placement-group/*")),
            ],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": ec2("launch-template/*"),
            "Condition": {"StringEquals": owned, "StringLike": of_a_nodepool},
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Resource": launched,
            "Condition": {"StringEquals": request_tags, "StringLike": for_a_nodepool},
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": launched,
            "Condition": {
                "StringEquals": {
                    **request_tags,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": for_a_nodepool,
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": ec2("instance/*"),
            "Condition": {
                "StringEquals": owned,
                "StringLike": of_a_nodepool,
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Resource": [ec2("instance/*"), ec2("launch-template/*")],
            "Condition": {"StringEquals": owned, "StringLike": of_a_nodepool},
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": node_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Action": "iam:GetInstanceProfile",
            "Resource": profiles,
        },
        {
            # IAM cannot scope a list to resources; the clean-up lists under its own path prefix.
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Action": "iam:ListInstanceProfiles",
            "Resource": "*",
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Action": "eks:DescribeCluster",
            "Resource": pulumi.Output.format("arn:{0}:eks:{1}:{2}:cluster/{3}", partition, region, account_id, cluster),
        },
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": queue_arn,
        },
        {
            # Describe* cannot be scoped to resources: the region is the scope.
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": pulumi.Output.format("arn:{0}:ssm:{1}::parameter/aws/service/*", partition, region),
        },
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
    ]
