"""CloudFront: HTTPS only with a modern TLS policy, and S3 origins read through origin access control."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import items, mapping

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
HTTPS_VIEWER_POLICIES = ("https-only", "redirect-to-https")
# Security policies that allow TLS 1.2+ with modern ciphers only.
MODERN_TLS_POLICIES = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")


def _behaviors(props: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    found = [("defaultCacheBehavior", mapping(props.get("defaultCacheBehavior")))]
    for behavior in items(props.get("orderedCacheBehaviors")):
        behavior = mapping(behavior)
        found.append((f"orderedCacheBehaviors[{behavior.get('pathPattern')}]", behavior))
    return found


@resource_rule("aws-cloudfront-https-only", Severity.HIGH, MANDATORY, types=[DISTRIBUTION])
def HTTPS_ONLY(args: ResourceValidationArgs) -> Iterator[str]:
    """CloudFront serves viewers over HTTPS only, with a TLS 1.2+ security policy and HTTPS to origins."""
    for where, behavior in _behaviors(args.props):
        policy = behavior.get("viewerProtocolPolicy")
        if policy not in HTTPS_VIEWER_POLICIES:
            yield f"{where}.viewerProtocolPolicy is {policy!r}: use https-only or redirect-to-https"
    certificate = mapping(args.props.get("viewerCertificate"))
    if certificate.get("cloudfrontDefaultCertificate") is True:
        yield "the default *.cloudfront.net certificate allows TLS 1.0: use an ACM certificate"
    elif certificate.get("minimumProtocolVersion") not in MODERN_TLS_POLICIES:
        yield (
            f"viewerCertificate.minimumProtocolVersion is {certificate.get('minimumProtocolVersion')!r}; "
            f"use one of {', '.join(MODERN_TLS_POLICIES)}"
        )
    for origin in items(args.props.get("origins")):
        custom = mapping(mapping(origin).get("customOriginConfig"))
        if custom and custom.get("originProtocolPolicy") != "https-only":
            yield f"origin {mapping(origin).get('originId')}: originProtocolPolicy must be https-only"


def _is_s3_origin(origin: Mapping[str, Any]) -> bool:
    domain = str(origin.get("domainName") or "")
    return "s3OriginConfig" in origin or (".s3." in domain and domain.endswith(".amazonaws.com"))


@resource_rule("aws-cloudfront-origin-access-control", Severity.HIGH, MANDATORY, types=[DISTRIBUTION])
def ORIGIN_ACCESS_CONTROL(args: ResourceValidationArgs) -> Iterator[str]:
    """CloudFront reads S3 origins through origin access control, so the bucket stays private."""
    for origin in items(args.props.get("origins")):
        origin = mapping(origin)
        if not _is_s3_origin(origin):
            continue
        name = origin.get("originId")
        if not origin.get("originAccessControlId"):
            yield f"S3 origin {name} has no originAccessControlId"
        if mapping(origin.get("s3OriginConfig")).get("originAccessIdentity"):
            yield f"S3 origin {name} uses a legacy origin access identity: use origin access control"


POLICIES = [HTTPS_ONLY, ORIGIN_ACCESS_CONTROL]
