"""At an AWS home, CloudFront serves the model registries at models.<domain>: each AWS region's
bucket at `/<region>/*` and the home's global model at `/global/*`, HTTPS only with TLS 1.2+,
every bucket readable by this distribution alone (origin access control)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.aws.cdn import MIN_TLS
from components.catalog import Cloud
from components.cloud_region import GLOBAL_MODELS
from components.config import available_stacks
from meridian.mocks import Inventory
from tests.components.aws.arns import bucket_arn
from tests.components.cloud_queries import config_of, mock_id, named, regions_on, statements

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


def _cdn_stacks() -> list[str]:
    return [s for s in available_stacks() if config_of(s).home_region.cloud is Cloud.AWS and config_of(s).cdn.enabled]


@pytest.fixture(params=_cdn_stacks())
def cdn_stack(request: pytest.FixtureRequest) -> str:
    return request.param


def test_stacks_without_an_aws_home_or_cdn_have_no_distribution(stack: str, inventory: Inventory) -> None:
    expected = ["global-registry-cdn"] if stack in _cdn_stacks() else []
    assert sorted(d.name for d in inventory.of_type(DISTRIBUTION)) == expected


def test_registry_cdn_is_https_only_with_modern_tls(cdn_stack: str, inventory_of: Callable[[str], Inventory]) -> None:
    inventory = inventory_of(cdn_stack)
    config = config_of(cdn_stack)
    inputs = named(inventory, "global-registry-cdn", DISTRIBUTION).inputs
    assert inputs["aliases"] == [f"models.{config.dns.domain}"]
    assert inputs["defaultCacheBehavior"]["viewerProtocolPolicy"] == "https-only"
    assert inputs["defaultCacheBehavior"]["allowedMethods"] == ["GET", "HEAD"]
    assert inputs["viewerCertificate"]["minimumProtocolVersion"] == MIN_TLS == "TLSv1.2_2021"
    assert inputs["viewerCertificate"]["sslSupportMethod"] == "sni-only"
    assert "cloudfrontDefaultCertificate" not in inputs["viewerCertificate"]
    assert inputs["priceClass"] == config.cdn.price_class
    certificate = named(inventory, "global-registry-cdn-cert", "aws:acm/certificate:Certificate")
    assert certificate.region == "us-east-1"  # CloudFront reads certificates from us-east-1 only


def test_every_aws_regions_registry_is_an_origin_served_at_its_own_path(
    cdn_stack: str, inventory_of: Callable[[str], Inventory]
) -> None:
    inventory = inventory_of(cdn_stack)
    home = config_of(cdn_stack).home
    regions = [r.name for r in regions_on(cdn_stack, Cloud.AWS)]
    cdn = named(inventory, "global-registry-cdn", DISTRIBUTION)
    oac = named(inventory, "global-registry-cdn-oac", "aws:cloudfront/originAccessControl:OriginAccessControl")
    assert oac.inputs["signingBehavior"] == "always" and oac.inputs["signingProtocol"] == "sigv4"
    origins = {o["originId"]: o for o in cdn.inputs["origins"]}
    assert sorted(origins) == sorted(regions)  # GCP regions are served by their own cloud's CDN
    for region in regions:
        bucket = named(inventory, f"{region}-registry", "aws:s3/bucket:Bucket")
        assert origins[region]["domainName"] == f"{bucket.name}.s3.{region}.amazonaws.com"
        assert origins[region]["originAccessControlId"] == mock_id(oac)
    # objects live under `<region>/` and `global/`: each path maps onto its bucket unchanged
    routes = {b["pathPattern"]: b["targetOriginId"] for b in cdn.inputs["orderedCacheBehaviors"]}
    assert routes == {f"/{GLOBAL_MODELS}/*": home, **{f"/{r}/*": r for r in regions}}
    assert cdn.inputs["defaultCacheBehavior"]["targetOriginId"] == home
    for behavior in [cdn.inputs["defaultCacheBehavior"], *cdn.inputs["orderedCacheBehaviors"]]:
        assert behavior["viewerProtocolPolicy"] == "https-only"
        assert behavior["allowedMethods"] == behavior["cachedMethods"] == ["GET", "HEAD"]
        assert behavior["cachePolicyId"] == cdn.inputs["defaultCacheBehavior"]["cachePolicyId"]


def test_only_this_distribution_reads_each_registry_bucket(
    cdn_stack: str, inventory_of: Callable[[str], Inventory]
) -> None:
    inventory = inventory_of(cdn_stack)
    for region in regions_on(cdn_stack, Cloud.AWS):
        bucket = named(inventory, f"{region.name}-registry", "aws:s3/bucket:Bucket")
        policy = named(
            inventory, f"global-registry-cdn-{region.name}-bucket-policy", "aws:s3/bucketPolicy:BucketPolicy"
        )
        assert policy.inputs["bucket"] == mock_id(bucket)
        assert policy.inputs["region"] == region.name  # the bucket's region, though the home's provider registers it
        deny_plain_http, cdn_reads = statements(policy)
        assert deny_plain_http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert cdn_reads["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert cdn_reads["Action"] == "s3:GetObject"
        assert cdn_reads["Resource"] == f"{bucket_arn(bucket)}/*"
        assert cdn_reads["Condition"]["StringEquals"]["AWS:SourceArn"].startswith("arn:aws:cloudfront:")
        # the bucket's key lets CloudFront decrypt, and only for this account's distributions
        key = named(inventory, f"{region.name}-registry-key", "aws:kms/key:Key")
        (cloudfront,) = [s for s in statements(key) if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
        assert cloudfront["Action"] == ["kms:Decrypt"]
        assert cloudfront["Condition"]["StringLike"]["AWS:SourceArn"] == (
            "arn:aws:cloudfront::123456789012:distribution/*"
        )


def test_without_a_cdn_no_registry_key_or_bucket_admits_cloudfront(aws_prod_without_cdn: Inventory) -> None:
    inventory = aws_prod_without_cdn
    assert inventory.of_type(DISTRIBUTION) == []
    for region in regions_on("aws-prod", Cloud.AWS):
        key = named(inventory, f"{region.name}-registry-key", "aws:kms/key:Key")
        assert [s["Sid"] for s in statements(key)] == ["AccountAdministers"]
        policy = named(inventory, f"{region.name}-registry-policy", "aws:s3/bucketPolicy:BucketPolicy")
        assert [s["Sid"] for s in statements(policy)] == ["DenyInsecureTransport"]
