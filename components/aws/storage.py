"""S3 buckets that hold data or models: customer-key encryption, versioning, no public access,
TLS only, and no replication (a region's data and models never leave its residency zone).
Each is tagged with what it holds and the region it serves, which the residency policy reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.account import Account
from components.aws.keys import customer_key

INCOMPLETE_UPLOAD_DAYS = 7  # multipart parts of an upload that never completed are aborted after this


@dataclass(frozen=True)
class SecureBucketArgs:
    purpose: str  # "data" or "registry": says what the bucket holds, in its name and tags
    region: str  # the region whose data or models it holds (it lives there too)
    stack: str
    account: Account
    # Services allowed to decrypt with the bucket's key (e.g. CloudFront reading the registry).
    key_service_statements: list[dict[str, Any]] = field(default_factory=list)
    # The CDN in front of the bucket attaches the policy itself, since it must name the
    # distribution that does not exist yet when the bucket is created.
    policy_attached_by_cdn: bool = False


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def attach_bucket_policy(
    name: str,
    bucket: aws.s3.Bucket,
    extra_statements: list[dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> aws.s3.BucketPolicy:
    """The bucket's only policy: TLS-only first, then whatever reads the bucket from outside IAM."""
    document = pulumi.Output.json_dumps(
        {"Version": "2012-10-17", "Statement": [tls_only_statement(bucket.arn), *extra_statements]}
    )
    # In the bucket's own region whichever provider registers it (the CDN's is the home's):
    # pulumi-aws 7 resources take a `region` of their own.
    return aws.s3.BucketPolicy(name, bucket=bucket.id, policy=document, region=bucket.region, opts=opts)


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    public_access_block: aws.s3.BucketPublicAccessBlock

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # beside the provider's default tags; policy/rules/meridian/residency.py reads both
        tags = {"meridian/purpose": args.purpose, "meridian/region": args.region}
        self.key = customer_key(
            name,
            "S3 server-side encryption",
            stack=args.stack,
            account=args.account,
            opts=child,
            service_statements=args.key_service_statements,
            tags=tags,
        )
        self.bucket = aws.s3.Bucket(f"{name}", force_destroy=False, tags=tags, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,  # ACLs off: access is decided by IAM and the bucket policy alone
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                    ),
                    bucket_key_enabled=True,  # fewer KMS calls per object, same key
                )
            ],
            opts=child,
        )
        # A push or publish cut off mid-upload leaves invisible multipart parts that are billed
        # until aborted: S3 aborts them after a week (AWS's recommended rule, S3 user guide
        # "Configuring a bucket lifecycle configuration to delete incomplete multipart uploads",
        # read 2026-11-30). Whole objects are never touched.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=INCOMPLETE_UPLOAD_DAYS
                    ),
                )
            ],
            opts=child,
        )
        if not args.policy_attached_by_cdn:
            attach_bucket_policy(
                f"{name}-policy",
                self.bucket,
                [],
                pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
            )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn, "key": self.key.arn})
