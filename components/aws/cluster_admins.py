"""EKS access entries for the stack's named admin roles (`meridian:aws.adminRoleArns`), so
more than the identity that ran the first `pulumi up` can reach each cluster.

The clusters use authentication mode `API` (components/aws/cluster.py): access entries, no
aws-auth ConfigMap. Each role gets a STANDARD entry and the AWS-managed
`AmazonEKSClusterAdminPolicy` at cluster scope. Sources (read 2026-11-30):
https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html (one entry per
principal; a role ARN may carry a path) and
https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html (the policy ARNs).
The creating identity keeps its own bootstrap entry: do not list it here too, EKS refuses a
second entry for the same principal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.account import Account

CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


def admin_entry_suffix(role_arn: str) -> str:
    """Named by a hash of the ARN (long, full of `:` and `/`), so reordering the list replaces
    nothing; the ARN itself cannot change in place (EKS replaces the entry)."""
    return f"admin-{hashlib.sha256(role_arn.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class ClusterAdminsArgs:
    cluster_name: pulumi.Input[str]
    role_arns: tuple[str, ...]  # validated by components/config.py: IAM role ARNs, no duplicates
    account: Account


class ClusterAdmins(pulumi.ComponentResource):
    entries: list[aws.eks.AccessEntry]

    def __init__(self, name: str, args: ClusterAdminsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:ClusterAdmins", name, None, opts)
        policy_arn = args.account.partition.apply(
            lambda p: f"arn:{p}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}"
        )
        self.entries = []
        for role_arn in args.role_arns:
            suffix = admin_entry_suffix(role_arn)
            entry = aws.eks.AccessEntry(
                f"{name}-{suffix}",
                cluster_name=args.cluster_name,
                principal_arn=role_arn,
                type="STANDARD",
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-{suffix}",
                cluster_name=args.cluster_name,
                principal_arn=entry.principal_arn,
                policy_arn=policy_arn,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.entries.append(entry)
        self.register_outputs({"principalArns": [e.principal_arn for e in self.entries]})
