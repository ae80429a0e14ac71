"""The stack's AWS providers: the one place AWS tags are set (every resource gets them as the
provider's `default_tags`), and the us-east-1 provider CloudFront's certificates need."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

CLOUDFRONT_CERTIFICATE_REGION = "us-east-1"  # CloudFront takes ACM certificates from here only


def regional_provider(region: str, tags: dict[str, str], parent: pulumi.Resource) -> aws.Provider:
    """The provider every resource of one AWS region goes through, tagging each by default."""
    return aws.Provider(
        f"aws-{region}",
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def certificate_provider(
    regional: Mapping[str, aws.Provider], tags: dict[str, str], parent: pulumi.Resource
) -> aws.Provider:
    """The stack's own us-east-1 provider, or one more for the CloudFront certificate alone."""
    return regional.get(CLOUDFRONT_CERTIFICATE_REGION) or regional_provider(CLOUDFRONT_CERTIFICATE_REGION, tags, parent)
