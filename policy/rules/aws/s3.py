"""S3: every bucket blocks public access, encrypts with KMS, denies plain HTTP, keeps versions.

The settings live on companion resources (BucketPublicAccessBlock, ...Encryption..., BucketPolicy,
BucketVersioning) that point at the bucket, so these are stack rules: a bucket with no
compliant companion is the violation. Inline settings of the legacy Bucket shape count too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs, StackValidationPolicy

from ..decorators import MANDATORY, stack_rule
from ..props import dig, items, mapping
from ..stack import of_types, refers_to
from .iam import statements

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def companions(args: StackValidationArgs, bucket: PolicyResource, types: tuple[str, ...]) -> list[PolicyResource]:
    """The resources of `types` whose `bucket` input names this bucket."""
    return [r for r in of_types(args, *types) if refers_to(r.props.get("bucket"), bucket, "bucket")]


BucketCheck = Callable[[StackValidationArgs, PolicyResource], str | None]


def bucket_rule(name: str, severity: Severity) -> Callable[[BucketCheck], StackValidationPolicy]:
    """A mandatory rule asked of every bucket: the check returns what is wrong with it, or None."""

    def declare(problem: BucketCheck) -> StackValidationPolicy:
        @functools.wraps(problem)  # the docstring is the rule's description
        def each_bucket(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
            for bucket in of_types(args, *BUCKETS):
                message = problem(args, bucket)
                if message:
                    yield f"bucket {bucket.name}: {message}", bucket.urn

        return stack_rule(name, severity, MANDATORY)(each_bucket)

    return declare


@bucket_rule("aws-s3-public-access-blocked", Severity.CRITICAL)
def PUBLIC_ACCESS_BLOCKED(args: StackValidationArgs, bucket: PolicyResource) -> str | None:
    """Every S3 bucket has a public access block with all four settings on."""
    blocks = companions(args, bucket, PUBLIC_ACCESS_BLOCK)
    if not blocks:
        return "no BucketPublicAccessBlock"
    off = sorted({flag for b in blocks for flag in PUBLIC_ACCESS_FLAGS if b.props.get(flag) is not True})
    return f"public access not blocked: {', '.join(off)} must be true" if off else None


def _kms_rule(rule: Any) -> bool:
    default = mapping(dig(rule, "applyServerSideEncryptionByDefault"))
    return default.get("sseAlgorithm") in KMS_ALGORITHMS and bool(default.get("kmsMasterKeyId"))


@bucket_rule("aws-s3-sse-kms", Severity.HIGH)
def SSE_KMS(args: StackValidationArgs, bucket: PolicyResource) -> str | None:
    """Every S3 bucket encrypts by default with SSE-KMS and a customer-managed key."""
    rules = [rule for c in companions(args, bucket, ENCRYPTION) for rule in items(c.props.get("rules"))]
    inline = dig(bucket.props, "serverSideEncryptionConfiguration", "rule")
    if inline is not None:
        rules.append(inline)
    if not rules:
        return "no server-side encryption configuration"
    if not all(_kms_rule(rule) for rule in rules):
        return "server-side encryption must be aws:kms with a customer key (kmsMasterKeyId)"
    return None


def denies_plain_http(statement: Mapping[str, Any]) -> bool:
    condition = mapping(mapping(statement.get("Condition")).get("Bool"))
    return (
        statement.get("Effect") == "Deny"
        and str(condition.get("aws:SecureTransport")).lower() == "false"
        and any(a in ("s3:*", "*") for a in items(statement.get("Action")))
    )


@bucket_rule("aws-s3-tls-only", Severity.HIGH)
def TLS_ONLY(args: StackValidationArgs, bucket: PolicyResource) -> str | None:
    """Every S3 bucket policy denies requests that do not use TLS (aws:SecureTransport)."""
    policies = [c.props.get("policy") for c in companions(args, bucket, BUCKET_POLICY)]
    policies.append(bucket.props.get("policy"))
    if any(denies_plain_http(s) for p in policies for s in statements(p)):
        return None
    return "no bucket policy statement denies s3:* when aws:SecureTransport is false"


@bucket_rule("aws-s3-versioning", Severity.MEDIUM)
def VERSIONING_ENABLED(args: StackValidationArgs, bucket: PolicyResource) -> str | None:
    """Every S3 bucket (the model registry and the data buckets) keeps object versions."""
    statuses = [dig(c.props, "versioningConfiguration", "status") for c in companions(args, bucket, VERSIONING)]
    if dig(bucket.props, "versioning", "enabled") is True or "Enabled" in statuses:
        return None
    return "versioning is not enabled"


POLICIES = [PUBLIC_ACCESS_BLOCKED, SSE_KMS, TLS_ONLY, VERSIONING_ENABLED]
