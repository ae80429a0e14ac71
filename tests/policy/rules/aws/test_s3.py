"""S3 stack rules: each bucket needs compliant companion resources that point at it."""

from __future__ import annotations

import json

from policy.rules.aws.s3 import PUBLIC_ACCESS_BLOCKED, SSE_KMS, TLS_ONLY, VERSIONING_ENABLED
from tests.policy.checks import AWS_US, assert_complies, assert_violates, resource

BUCKET = resource("aws:s3/bucket:Bucket", "data", AWS_US)
KEY = "arn:aws:kms:us-east-1:123456789012:key/abc"
ALL_BLOCKED = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)


def companion(type_: str, name: str, **props: object):
    return resource(f"aws:s3/{type_}", name, AWS_US, bucket="data", **props)


def test_a_bucket_with_all_four_public_access_settings_complies() -> None:
    block = companion("bucketPublicAccessBlock:BucketPublicAccessBlock", "data-pab", **ALL_BLOCKED)
    assert_complies(PUBLIC_ACCESS_BLOCKED, BUCKET, block)


def test_a_bucket_without_a_public_access_block_violates() -> None:
    assert_violates(PUBLIC_ACCESS_BLOCKED, BUCKET, containing="no BucketPublicAccessBlock")


def test_a_public_access_block_with_a_setting_off_violates() -> None:
    block = companion(
        "bucketPublicAccessBlock:BucketPublicAccessBlock", "data-pab", **{**ALL_BLOCKED, "blockPublicPolicy": False}
    )
    assert_violates(PUBLIC_ACCESS_BLOCKED, BUCKET, block, containing="blockPublicPolicy")


def test_a_block_for_another_bucket_does_not_count() -> None:
    other = resource(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "x", AWS_US, bucket="registry", **ALL_BLOCKED
    )
    assert_violates(PUBLIC_ACCESS_BLOCKED, BUCKET, other, containing="no BucketPublicAccessBlock")


def _encryption(algorithm: str, key: str | None):
    default = {"sseAlgorithm": algorithm} | ({"kmsMasterKeyId": key} if key else {})
    return companion(
        "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "data-sse",
        rules=[{"applyServerSideEncryptionByDefault": default}],
    )


def test_sse_kms_with_a_customer_key_complies() -> None:
    assert_complies(SSE_KMS, BUCKET, _encryption("aws:kms", KEY))


def test_s3_managed_keys_violate() -> None:
    assert_violates(SSE_KMS, BUCKET, _encryption("AES256", None), containing="aws:kms")


def test_no_encryption_configuration_violates() -> None:
    assert_violates(SSE_KMS, BUCKET, containing="no server-side encryption")


def _policy(statement: dict[str, object]):
    return companion("bucketPolicy:BucketPolicy", "data-policy", policy=json.dumps({"Statement": [statement]}))


DENY_HTTP = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_a_policy_denying_plain_http_complies() -> None:
    assert_complies(TLS_ONLY, BUCKET, _policy(DENY_HTTP))


def test_a_policy_without_the_tls_deny_violates() -> None:
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}
    assert_violates(TLS_ONLY, BUCKET, _policy(allow), containing="aws:SecureTransport")


def test_enabled_versioning_complies() -> None:
    versioning = companion(
        "bucketVersioning:BucketVersioning", "data-versioning", versioningConfiguration={"status": "Enabled"}
    )
    assert_complies(VERSIONING_ENABLED, BUCKET, versioning)


def test_suspended_versioning_violates() -> None:
    versioning = companion(
        "bucketVersioning:BucketVersioning", "data-versioning", versioningConfiguration={"status": "Suspended"}
    )
    assert_violates(VERSIONING_ENABLED, BUCKET, versioning, containing="versioning is not enabled")
