"""CloudFront: HTTPS only with modern TLS, S3 origins behind origin access control."""

from __future__ import annotations

from typing import Any

from policy.rules.aws.cloudfront import HTTPS_ONLY, ORIGIN_ACCESS_CONTROL
from tests.policy.checks import AWS_US, assert_complies, assert_violates, resource

S3_DOMAIN = "registry.s3.us-east-1.amazonaws.com"


def distribution(**overrides: Any):
    props: dict[str, Any] = {
        "defaultCacheBehavior": {"viewerProtocolPolicy": "redirect-to-https"},
        "viewerCertificate": {
            "acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
            "minimumProtocolVersion": "TLSv1.2_2021",
        },
        "origins": [{"originId": "registry", "domainName": S3_DOMAIN, "originAccessControlId": "E123"}],
    } | overrides
    return resource("aws:cloudfront/distribution:Distribution", "cdn", AWS_US, **props)


def test_https_with_tls_1_2_2021_complies() -> None:
    assert_complies(HTTPS_ONLY, distribution())


def test_allowing_plain_http_violates() -> None:
    assert_violates(
        HTTPS_ONLY, distribution(defaultCacheBehavior={"viewerProtocolPolicy": "allow-all"}), containing="allow-all"
    )


def test_the_default_certificate_violates() -> None:
    assert_violates(
        HTTPS_ONLY, distribution(viewerCertificate={"cloudfrontDefaultCertificate": True}), containing="TLS 1.0"
    )


def test_an_old_tls_policy_violates() -> None:
    old = {"acmCertificateArn": "arn:x", "minimumProtocolVersion": "TLSv1_2016"}
    assert_violates(HTTPS_ONLY, distribution(viewerCertificate=old), containing="TLSv1_2016")


def test_an_s3_origin_with_origin_access_control_complies() -> None:
    assert_complies(ORIGIN_ACCESS_CONTROL, distribution())


def test_an_s3_origin_without_origin_access_control_violates() -> None:
    origins = [{"originId": "registry", "domainName": S3_DOMAIN}]
    assert_violates(ORIGIN_ACCESS_CONTROL, distribution(origins=origins), containing="no originAccessControlId")


def test_a_legacy_origin_access_identity_violates() -> None:
    origins = [
        {
            "originId": "r",
            "domainName": S3_DOMAIN,
            "originAccessControlId": "E1",
            "s3OriginConfig": {"originAccessIdentity": "origin-access-identity/cloudfront/E2"},
        }
    ]
    assert_violates(ORIGIN_ACCESS_CONTROL, distribution(origins=origins), containing="legacy origin access identity")
