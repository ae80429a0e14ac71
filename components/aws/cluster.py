"""EKS: a cluster whose API is private (or reachable only from named CIDRs), whose secrets are
encrypted with a customer key and whose control plane logs, plus its managed node groups: a
small system group (it runs Karpenter, which launches the GPU nodes: components/aws/karpenter.py)
and one CPU group per edge site in that site's Local Zone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.account import Account
from components.aws.keys import customer_key
from components.cluster_access import CAPACITY_LABEL, EDGE_SITE_LABEL, POOL_LABEL
from components.config import Region
from components.kubeconfig import exec_kubeconfig

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
LOG_RETENTION_DAYS = 90
CPU_AMI = "AL2023_x86_64_STANDARD"
SYSTEM_NODES = (2, 2, 3)  # min, desired, max: CoreDNS, metrics, Karpenter (2 replicas, one per node)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


# What every EKS worker needs, managed node group or Karpenter-launched alike.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


def worker_node_role(
    name: str, partition: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role `<name>` EC2 worker nodes assume, and its attachments of NODE_POLICIES."""
    role = aws.iam.Role(name, assume_role_policy=_assume_role_policy("ec2.amazonaws.com"), opts=opts)
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}",
            role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                lambda p, policy=policy: f"arn:{p}:iam::aws:policy/{policy}"
            ),
            opts=opts,
        )
        for policy in NODE_POLICIES
    ]
    return role, attachments


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str  # physical name, unique per account and region
    stack: str
    region: Region
    kubernetes_version: str
    subnet_ids: list[pulumi.Output[str]]  # private, two AZs: control plane ENIs and regional nodes
    edge_subnet_ids: dict[str, pulumi.Output[str]]  # edge site name -> Local Zone subnet
    api_allowed_cidrs: list[str]  # empty: the API endpoint is private only
    account: Account


class EksCluster(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    oidc_provider: aws.iam.OpenIdConnectProvider
    oidc_issuer: pulumi.Output[str]  # without `https://`, as IRSA trust conditions want it
    provider: k8s.Provider
    security_group_id: pulumi.Output[str]  # the cluster security group EKS creates; every node needs it
    system_node_group: aws.eks.NodeGroup
    edge_node_groups: dict[str, aws.eks.NodeGroup]
    node_groups: list[aws.eks.NodeGroup]  # all of them: the Kubernetes layer waits for these

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region

        cluster_role = aws.iam.Role(
            f"{name}-control-plane",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=cluster_role.name,
            policy_arn=args.account.partition.apply(lambda p: f"arn:{p}:iam::aws:policy/AmazonEKSClusterPolicy"),
            opts=child,
        )
        secrets_key = customer_key(
            f"{name}-secrets",
            "Kubernetes secrets envelope encryption",
            stack=args.stack,
            subject=args.cluster_name,
            account=args.account,
            opts=child,
        )
        # Created before the cluster so EKS writes into a log group with our retention and tags.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=LOG_RETENTION_DAYS,
            opts=child,
        )
        public = bool(args.api_allowed_cidrs)
        self.cluster = aws.eks.Cluster(
            name,
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=args.api_allowed_cidrs if public else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy, logs]),
        )

        # The VPC CNI enforces NetworkPolicies only when asked to (the workloads rely on them).
        aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=self.cluster.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=child,
        )
        self.oidc_issuer = self.cluster.identities.apply(_oidc_issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=pulumi.Output.concat("https://", self.oidc_issuer),
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )

        node_role, node_policies = worker_node_role(f"{name}-nodes", args.account.partition, child)

        def node_group(
            suffix: str,
            *,
            subnets: list[pulumi.Output[str]],
            instance_type: str,
            bounds: tuple[int, int, int],
            labels: dict[str, str],
            taints: list[aws.eks.NodeGroupTaintArgs],
        ) -> aws.eks.NodeGroup:
            low, desired, high = bounds
            return aws.eks.NodeGroup(
                f"{name}-{suffix}",
                cluster_name=self.cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=subnets,
                instance_types=[instance_type],
                ami_type=CPU_AMI,
                capacity_type="ON_DEMAND",
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=low, desired_size=desired, max_size=high),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                labels={**labels, CAPACITY_LABEL: "on-demand"},
                taints=taints,
                tags={"meridian/pool": suffix},
                # fixed sizes: nothing autoscales these groups (GPU capacity is Karpenter's)
                opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
            )

        self.system_node_group = node_group(
            "system",
            subnets=args.subnet_ids,
            instance_type=region.system_machine,
            bounds=SYSTEM_NODES,
            labels={POOL_LABEL: "system"},
            taints=[],
        )

        self.edge_node_groups = {
            site.name: node_group(
                f"edge-{site.name}",
                subnets=[args.edge_subnet_ids[site.name]],
                instance_type=region.edge_machine(site),
                bounds=(site.capacity, site.capacity, site.capacity),
                labels={POOL_LABEL: "edge", EDGE_SITE_LABEL: site.name},
                taints=[aws.eks.NodeGroupTaintArgs(key=EDGE_SITE_LABEL, value=site.name, effect="NO_SCHEDULE")],
            )
            for site in region.edge_sites
        }
        self.node_groups = [self.system_node_group, *self.edge_node_groups.values()]
        self.security_group_id = self.cluster.vpc_config.apply(_cluster_security_group)

        kubeconfig = pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
        ).apply(
            # `aws eks get-token` authenticates: no long-lived credential in the state
            lambda v: exec_kubeconfig(
                v[0],
                server=v[1],
                ca_data=v[2],
                command="aws",
                args=["eks", "get-token", "--cluster-name", v[0], "--region", region.name],
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(kubeconfig),
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )
        self.register_outputs(
            {"clusterName": self.cluster.name, "endpoint": self.cluster.endpoint, "oidcIssuer": self.oidc_issuer}
        )


def _cluster_security_group(vpc: aws.eks.outputs.ClusterVpcConfig) -> str:
    if not vpc.cluster_security_group_id:
        raise ValueError("the EKS cluster reports no cluster security group: Karpenter's nodes need it")
    return vpc.cluster_security_group_id


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    oidcs = identities[0].oidcs if identities else None
    if not oidcs or not oidcs[0].issuer:
        raise ValueError("the EKS cluster reports no OIDC issuer: IRSA cannot be set up")
    return oidcs[0].issuer.removeprefix("https://")
