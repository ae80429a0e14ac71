"""Cloud Storage: public access prevention enforced, uniform bucket-level access, CMEK."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import dig

BUCKET = "gcp:storage/bucket:Bucket"


@resource_rule("gcp-gcs-public-access-prevention", Severity.CRITICAL, MANDATORY, types=[BUCKET])
def PUBLIC_ACCESS_PREVENTION(args: ResourceValidationArgs) -> Iterator[str]:
    """Cloud Storage buckets enforce public access prevention."""
    value = args.props.get("publicAccessPrevention")
    if value != "enforced":
        yield f"publicAccessPrevention is {value!r}, must be 'enforced'"


@resource_rule("gcp-gcs-uniform-access", Severity.HIGH, MANDATORY, types=[BUCKET])
def UNIFORM_ACCESS(args: ResourceValidationArgs) -> Iterator[str]:
    """Cloud Storage buckets use uniform bucket-level access."""
    if args.props.get("uniformBucketLevelAccess") is not True:
        yield "uniformBucketLevelAccess must be true (no per-object ACLs)"


@resource_rule("gcp-gcs-cmek", Severity.HIGH, MANDATORY, types=[BUCKET])
def CMEK(args: ResourceValidationArgs) -> Iterator[str]:
    """Cloud Storage buckets encrypt with a customer-managed Cloud KMS key."""
    if not dig(args.props, "encryption", "defaultKmsKeyName"):
        yield "encryption.defaultKmsKeyName is not set: encrypt with a customer-managed key"


POLICIES = [PUBLIC_ACCESS_PREVENTION, UNIFORM_ACCESS, CMEK]
