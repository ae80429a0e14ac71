"""Cloud Storage: public access prevention enforced, uniform bucket-level access, CMEK."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import MANDATORY, dig, resource_rule

BUCKET = "gcp:storage/bucket:Bucket"


def _public_access_prevention(args: ResourceValidationArgs) -> Iterator[str]:
    value = args.props.get("publicAccessPrevention")
    if value != "enforced":
        yield f"publicAccessPrevention is {value!r}, must be 'enforced'"


def _uniform_access(args: ResourceValidationArgs) -> Iterator[str]:
    if args.props.get("uniformBucketLevelAccess") is not True:
        yield "uniformBucketLevelAccess must be true (no per-object ACLs)"


def _cmek(args: ResourceValidationArgs) -> Iterator[str]:
    if not dig(args.props, "encryption", "defaultKmsKeyName"):
        yield "encryption.defaultKmsKeyName is not set: encrypt with a customer-managed key"


PUBLIC_ACCESS_PREVENTION = resource_rule(
    "gcp-gcs-public-access-prevention",
    "Cloud Storage buckets enforce public access prevention.",
    severity=Severity.CRITICAL,
    enforcement=MANDATORY,
    types=[BUCKET],
    check=_public_access_prevention,
)

UNIFORM_ACCESS = resource_rule(
    "gcp-gcs-uniform-access",
    "Cloud Storage buckets use uniform bucket-level access.",
    severity=Severity.HIGH,
    enforcement=MANDATORY,
    types=[BUCKET],
    check=_uniform_access,
)

CMEK = resource_rule(
    "gcp-gcs-cmek",
    "Cloud Storage buckets encrypt with a customer-managed Cloud KMS key.",
    severity=Severity.HIGH,
    enforcement=MANDATORY,
    types=[BUCKET],
    check=_cmek,
)

POLICIES = [PUBLIC_ACCESS_PREVENTION, UNIFORM_ACCESS, CMEK]
