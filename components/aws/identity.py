"""IAM roles for Kubernetes ServiceAccounts (IRSA): each role trusts only the named
ServiceAccounts of one cluster and may do only what its inline policy lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster_access import ServiceAccountRef, WorkloadIdentity


@dataclass(frozen=True)
class ServiceAccountRoleArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]  # the issuer URL without `https://`
    service_accounts: tuple[ServiceAccountRef, ...]  # the role trusts these and no other
    statements: list[dict[str, Any]]  # the role's own permissions (inline); empty means none
    # AWS-managed policies attached as they are (an add-on's published policy, e.g. the EBS CSI
    # driver's), so they follow AWS's updates; empty for our own workloads
    managed_policy_arns: tuple[pulumi.Input[str], ...] = ()


def list_objects(bucket_arn: pulumi.Input[str], prefix: str = "") -> dict[str, Any]:
    """List one bucket (optionally only keys under a prefix). Listing also decides how S3 answers
    a missing key: 404 to a caller that may list the bucket, 403 to one that may not."""
    return {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn} | (
        {"Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}} if prefix else {}
    )


def get_objects(bucket_arn: pulumi.Input[str], prefix: str = "") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": pulumi.Output.concat(bucket_arn, "/", prefix, "*")}


def read_objects(bucket_arn: pulumi.Input[str], prefix: str = "") -> list[dict[str, Any]]:
    """List one bucket and read its objects (optionally under a prefix)."""
    return [list_objects(bucket_arn, prefix), get_objects(bucket_arn, prefix)]


def write_objects(bucket_arn: pulumi.Input[str], prefix: str) -> list[dict[str, Any]]:
    """Put objects under one prefix of one bucket (no delete: the registry is versioned history)."""
    return [
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(bucket_arn, "/", prefix, "*"),
        }
    ]


def use_key(key_arn: pulumi.Input[str], *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": [f"kms:{a}" for a in actions], "Resource": key_arn}


class ServiceAccountRole(pulumi.ComponentResource):
    role: aws.iam.Role
    attachments: list[aws.iam.RolePolicyAttachment]  # of managed_policy_arns: depend on these to act
    identity: WorkloadIdentity

    def __init__(self, name: str, args: ServiceAccountRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:ServiceAccountRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subjects = [ref.subject for ref in args.service_accounts]
        condition = pulumi.Output.from_input(args.oidc_issuer).apply(
            lambda issuer: {f"{issuer}:sub": subjects, f"{issuer}:aud": "sts.amazonaws.com"}
        )
        trust = pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": args.oidc_provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {"StringEquals": condition},
                    }
                ],
            }
        )
        self.role = aws.iam.Role(name, assume_role_policy=trust, opts=child)
        if args.statements:
            aws.iam.RolePolicy(
                name,
                role=self.role.id,
                policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": args.statements}),
                opts=child,
            )
        self.attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-managed-{i}", role=self.role.name, policy_arn=policy_arn, opts=child)
            for i, policy_arn in enumerate(args.managed_policy_arns)
        ]
        self.identity = WorkloadIdentity(annotations={"eks.amazonaws.com/role-arn": self.role.arn})
        self.register_outputs({"roleArn": self.role.arn})
