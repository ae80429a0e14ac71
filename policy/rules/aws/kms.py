"""KMS: customer-managed symmetric keys rotate their material automatically."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule

SYMMETRIC = "SYMMETRIC_DEFAULT"


@resource_rule("aws-kms-key-rotation", Severity.MEDIUM, MANDATORY, types=["aws:kms/key:Key"])
def KEY_ROTATION(args: ResourceValidationArgs) -> Iterator[str]:
    """Customer-managed KMS keys have automatic key rotation on."""
    spec = args.props.get("customerMasterKeySpec") or args.props.get("keySpec") or SYMMETRIC
    if spec != SYMMETRIC:
        args.not_applicable(f"{spec} keys cannot rotate automatically")
    if args.props.get("enableKeyRotation") is not True:
        yield "enableKeyRotation must be true"


POLICIES = [KEY_ROTATION]
