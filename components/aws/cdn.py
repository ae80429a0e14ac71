"""CloudFront in front of the model registries: one origin per AWS region's registry bucket, each
served at `/<region>/*` (its objects live under `<region>/`, so paths need no rewriting) and the
global model at `/global/*` from the home's bucket; HTTPS only (TLS 1.2+), every bucket readable
by this distribution alone through origin access control, served at `models.<domain>`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.account import Account
from components.aws.storage import attach_bucket_policy
from components.cloud_region import GLOBAL_MODELS
from components.config import Cdn

MIN_TLS = "TLSv1.2_2021"
MAX_TTL_SECONDS = 31_536_000


def cloudfront_key_statement(account: Account) -> dict[str, object]:
    """Lets this account's distributions decrypt objects under the bucket's customer key."""
    return {
        "Sid": "CloudFrontReadsThroughOriginAccessControl",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": ["kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringLike": {
                "AWS:SourceArn": pulumi.Output.format(
                    "arn:{0}:cloudfront::{1}:distribution/*", account.partition, account.id
                )
            }
        },
    }


def validated_certificate(
    name: str,
    domain_name: str,
    zone_id: pulumi.Input[str],
    us_east_1: aws.Provider,
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """An ACM certificate for `domain_name` in us-east-1, proven through our own zone; its ARN
    resolves once ACM has validated it."""
    in_us_east_1 = pulumi.ResourceOptions(parent=parent, provider=us_east_1)
    certificate = aws.acm.Certificate(
        f"{name}-cert", domain_name=domain_name, validation_method="DNS", opts=in_us_east_1
    )
    option = certificate.domain_validation_options[0]
    proof = aws.route53.Record(
        f"{name}-cert-validation",
        zone_id=zone_id,
        name=option.resource_record_name.apply(lambda v: v or ""),
        type=option.resource_record_type.apply(lambda v: v or "CNAME"),
        records=[option.resource_record_value.apply(lambda v: v or "")],
        ttl=300,
        allow_overwrite=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    validated = aws.acm.CertificateValidation(
        f"{name}-cert", certificate_arn=certificate.arn, validation_record_fqdns=[proof.fqdn], opts=in_us_east_1
    )
    return validated.certificate_arn


def alias_to(
    name: str,
    domain_name: str,
    zone_id: pulumi.Input[str],
    distribution: aws.cloudfront.Distribution,
    parent: pulumi.Resource,
) -> aws.route53.Record:
    """`domain_name` answers with the distribution's addresses (an alias: no CNAME at an apex)."""
    return aws.route53.Record(
        name,
        zone_id=zone_id,
        name=domain_name,
        type="A",
        aliases=[
            aws.route53.RecordAliasArgs(
                name=distribution.domain_name, zone_id=distribution.hosted_zone_id, evaluate_target_health=False
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class RegistryCdnArgs:
    buckets: dict[str, aws.s3.Bucket]  # each AWS region's registry bucket, by region
    home: str  # whose bucket also holds the global model (and answers any other path)
    domain_name: str  # e.g. models.api.example.com
    zone_id: pulumi.Input[str]  # Route53 zone holding domain_name (certificate validation, alias)
    settings: Cdn
    # CloudFront only accepts ACM certificates from us-east-1.
    us_east_1: aws.Provider


class RegistryCdn(pulumi.ComponentResource):
    distribution: aws.cloudfront.Distribution
    url: str

    def __init__(self, name: str, args: RegistryCdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:RegistryCdn", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        certificate_arn = validated_certificate(name, args.domain_name, args.zone_id, args.us_east_1, self)
        access = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            description=f"{args.domain_name} reads the registry buckets",
            opts=child,
        )
        ttl = args.settings.default_ttl_seconds
        cache = aws.cloudfront.CachePolicy(
            f"{name}-cache",
            default_ttl=ttl,
            min_ttl=0,
            max_ttl=max(ttl, MAX_TTL_SECONDS),
            parameters_in_cache_key_and_forwarded_to_origin=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
                cookies_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(
                    cookie_behavior="none"
                ),
                headers_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
                    header_behavior="none"
                ),
                query_strings_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
                    query_string_behavior="none"
                ),
                enable_accept_encoding_gzip=True,
                enable_accept_encoding_brotli=True,
            ),
            opts=child,
        )
        # Every path is read-only (artifacts are published to the buckets) and cached alike.
        behavior = {
            "allowed_methods": ["GET", "HEAD"],
            "cached_methods": ["GET", "HEAD"],
            "viewer_protocol_policy": "https-only",
            "cache_policy_id": cache.id,
            "compress": True,
        }
        paths = [(GLOBAL_MODELS, args.home), *((region, region) for region in args.buckets)]
        self.distribution = aws.cloudfront.Distribution(
            name,
            enabled=True,
            comment=f"Meridian model registry: {args.domain_name}",
            aliases=[args.domain_name],
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=region,
                    domain_name=bucket.bucket_regional_domain_name,
                    origin_access_control_id=access.id,
                )
                for region, bucket in args.buckets.items()
            ],
            ordered_cache_behaviors=[
                aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                    path_pattern=f"/{path}/*", target_origin_id=origin, **behavior
                )
                for path, origin in paths
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=args.home, **behavior
            ),
            price_class=args.settings.price_class,
            http_version="http2and3",
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=MIN_TLS,
            ),
            opts=child,
        )
        for region, bucket in args.buckets.items():
            attach_bucket_policy(
                f"{name}-{region}-bucket-policy",
                bucket,
                [
                    {
                        "Sid": "ThisDistributionReads",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudfront.amazonaws.com"},
                        "Action": "s3:GetObject",
                        "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                        "Condition": {"StringEquals": {"AWS:SourceArn": self.distribution.arn}},
                    }
                ],
                # The home's policy had no region in its name: renamed without an alias, the old
                # one's delete would run after the new one's create and drop the bucket's policy.
                pulumi.ResourceOptions(
                    parent=self,
                    aliases=[pulumi.Alias(name=f"{name}-bucket-policy")] if region == args.home else None,
                ),
            )
        alias_to(f"{name}-alias", args.domain_name, args.zone_id, self.distribution, self)
        self.url = f"https://{args.domain_name}"
        self.register_outputs({"url": self.url, "distributionDomain": self.distribution.domain_name})
