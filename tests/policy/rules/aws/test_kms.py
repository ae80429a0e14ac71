"""KMS key rotation."""

from __future__ import annotations

from policy.rules.aws.kms import KEY_ROTATION
from tests.policy.checks import AWS_US, assert_complies, assert_violates, check, resource

KEY = "aws:kms/key:Key"


def test_a_rotating_key_complies() -> None:
    assert_complies(KEY_ROTATION, resource(KEY, "k", AWS_US, enableKeyRotation=True))


def test_a_key_without_rotation_violates() -> None:
    assert_violates(KEY_ROTATION, resource(KEY, "k", AWS_US), containing="enableKeyRotation")


def test_asymmetric_keys_are_not_applicable() -> None:
    report = check(KEY_ROTATION, resource(KEY, "k", AWS_US, customerMasterKeySpec="RSA_2048"))
    assert not report.violations
    assert [p for p, _, _ in report.not_applicable] == ["aws-kms-key-rotation"]
