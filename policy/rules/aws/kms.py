"""KMS: customer-managed symmetric keys rotate their material automatically."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import MANDATORY, resource_rule

SYMMETRIC = "SYMMETRIC_DEFAULT"


def _rotation(args: ResourceValidationArgs) -> Iterator[str]:
    spec = args.props.get("customerMasterKeySpec") or args.props.get("keySpec") or SYMMETRIC
    if spec != SYMMETRIC:
        args.not_applicable(f"{spec} keys cannot rotate automatically")
    if args.props.get("enableKeyRotation") is not True:
        yield "enableKeyRotation must be true"


KEY_ROTATION = resource_rule(
    "aws-kms-key-rotation",
    "Customer-managed KMS keys have automatic key rotation on.",
    severity=Severity.MEDIUM,
    enforcement=MANDATORY,
    types=["aws:kms/key:Key"],
    check=_rotation,
)

POLICIES = [KEY_ROTATION]
