"""CloudFront in front of the inference API at the stack's domain: clients speak HTTPS (TLS
1.2+) to the nearest edge, which forwards every request uncached to the latency-routed
inference name, so the nearest healthy region answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.cdn import MIN_TLS, alias_to, validated_certificate
from components.config import Cdn

# AWS managed policies (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
# using-managed-cache-policies.html, using-managed-origin-request-policies.html).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # inference answers are per request
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # headers, query, body


@dataclass(frozen=True)
class ApiCdnArgs:
    domain_name: str  # what clients call, e.g. api.example.com
    origin_name: str  # the latency-routed inference name
    origin_port: int  # the regional inference load balancers' port
    zone_id: pulumi.Input[str]
    settings: Cdn
    us_east_1: aws.Provider  # CloudFront only accepts ACM certificates from us-east-1
    tags: dict[str, str] = field(default_factory=dict)


class ApiCdn(pulumi.ComponentResource):
    distribution: aws.cloudfront.Distribution
    url: str

    def __init__(self, name: str, args: ApiCdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:ApiCdn", name, None, opts)
        certificate_arn = validated_certificate(name, args.domain_name, args.zone_id, args.us_east_1, args.tags, self)
        origin_id = "inference"
        self.distribution = aws.cloudfront.Distribution(
            name,
            enabled=True,
            comment=f"Meridian inference API: {args.domain_name}",
            aliases=[args.domain_name],
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=origin_id,
                    domain_name=args.origin_name,
                    # The regional load balancers speak plain HTTP on their service port; TLS
                    # ends at the edge nearest the client.
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=args.origin_port,
                        https_port=443,
                        origin_protocol_policy="http-only",
                        origin_ssl_protocols=["TLSv1.2"],
                    ),
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=origin_id,
                allowed_methods=["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                cached_methods=["GET", "HEAD"],
                viewer_protocol_policy="https-only",
                cache_policy_id=CACHING_DISABLED,
                origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress=True,
            ),
            price_class=args.settings.price_class,
            http_version="http2and3",
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate_arn, ssl_support_method="sni-only", minimum_protocol_version=MIN_TLS
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        alias_to(f"{name}-alias", args.domain_name, args.zone_id, self.distribution, self)
        self.url = f"https://{args.domain_name}"
        self.register_outputs({"url": self.url, "distribution_domain": self.distribution.domain_name})
