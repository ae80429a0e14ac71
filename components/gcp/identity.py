"""Google service accounts for Kubernetes ServiceAccounts (Workload Identity): each trusts
only the named ServiceAccounts of the fleet's clusters and holds only the bucket grants listed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.cluster_access import ServiceAccountRef, WorkloadIdentity
from components.gcp.project import Project


@dataclass(frozen=True)
class BucketGrant:
    bucket: pulumi.Input[str]  # bucket name
    role: str  # e.g. roles/storage.objectViewer
    prefix: str = ""  # limit the grant to objects under this prefix (an IAM condition)


def read_bucket(bucket: pulumi.Input[str], prefix: str = "") -> BucketGrant:
    """Read objects (under `prefix` only, when given). A prefix condition cannot cover
    listing, which IAM checks on the bucket: readers of a prefix fetch by name."""
    return BucketGrant(bucket, "roles/storage.objectViewer", prefix)


def publish_prefix(bucket: pulumi.Input[str], prefix: str) -> BucketGrant:
    """Publish artifacts under one prefix: create its objects and replace its `latest` pointers.
    objectCreator is not enough: GCS replaces an object only with storage.objects.delete too
    (objects.insert in https://docs.cloud.google.com/storage/docs/access-control/iam-json,
    read 2026-11-30), and every publish rewrites `<model>/latest/<region>/<variant>.json`
    (workloads/registry/store.py). objectUser is the least predefined role with both, and no
    IAM permissions; versioning keeps what a replace or delete leaves behind."""
    return BucketGrant(bucket, "roles/storage.objectUser", prefix)


@dataclass(frozen=True)
class WorkloadServiceAccountArgs:
    account_id: str  # 6-30 characters, unique in the project
    project: Project
    service_accounts: tuple[ServiceAccountRef, ...]  # the account trusts these and no other
    grants: list[BucketGrant] = field(default_factory=list)


class WorkloadServiceAccount(pulumi.ComponentResource):
    account: gcp.serviceaccount.Account
    identity: WorkloadIdentity

    def __init__(self, name: str, args: WorkloadServiceAccountArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:gcp:WorkloadServiceAccount", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = gcp.serviceaccount.Account(
            name,
            project=args.project.id,
            account_id=args.account_id,
            display_name=", ".join(f"{r.namespace}/{r.name}" for r in args.service_accounts),
            opts=child,
        )
        for ref in args.service_accounts:
            gcp.serviceaccount.IAMMember(
                f"{name}-{ref.name}-workload-identity",
                service_account_id=self.account.name,
                role="roles/iam.workloadIdentityUser",
                member=f"serviceAccount:{args.project.workload_pool}[{ref.namespace}/{ref.name}]",
                opts=child,
            )
        for i, grant in enumerate(args.grants):
            condition = None
            if grant.prefix:
                condition = gcp.storage.BucketIAMMemberConditionArgs(
                    title=f"only {grant.prefix}",
                    expression=pulumi.Output.format(
                        'resource.name.startsWith("projects/_/buckets/{0}/objects/{1}")', grant.bucket, grant.prefix
                    ),
                )
            gcp.storage.BucketIAMMember(
                f"{name}-grant-{i}",
                bucket=grant.bucket,
                role=grant.role,
                member=self.account.member,
                condition=condition,
                opts=child,
            )
        self.identity = WorkloadIdentity(annotations={"iam.gke.io/gcp-service-account": self.account.email})
        self.register_outputs({"email": self.account.email})
