"""Required tags and labels (owner, stack, cost-center) on everything that bills, and namespaces.

AWS tags may come from the provider's `defaultTags`, GCP labels from its `defaultLabels`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, Severity

from ..config_schema import string_list
from ..decorators import ADVISORY, resource_rule
from ..kubernetes.metadata import labels_of
from ..props import decoded, dig, mapping

# Billable resources that must carry the tags even when they have no `tags` input of their own.
AWS_TAGGED = (
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:cloudfront/distribution:Distribution",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:kms/key:Key",
    "aws:ecr/repository:Repository",
)
# GCP resource -> where its labels live.
GCP_LABELS: dict[str, tuple[str, ...]] = {
    "gcp:container/cluster:Cluster": ("resourceLabels",),
    "gcp:container/nodePool:NodePool": ("nodeConfig", "resourceLabels"),
    "gcp:storage/bucket:Bucket": ("labels",),
    "gcp:kms/cryptoKey:CryptoKey": ("labels",),
    "gcp:artifactregistry/repository:Repository": ("labels",),
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": ("labels",),
}
NAMESPACE = "kubernetes:core/v1:Namespace"
DEFAULT_REQUIRED = ["owner", "stack", "cost-center"]
REQUIRED_KEYS_SCHEMA = PolicyConfigSchema(properties={"requiredKeys": string_list(DEFAULT_REQUIRED)})


def _provider_props(args: ResourceValidationArgs) -> Mapping[str, Any]:
    return args.provider.props if args.provider is not None else {}


def _provider_mapping(args: ResourceValidationArgs, *path: str) -> Mapping[str, Any]:
    """Provider config arrives as the engine passes it: nested values are JSON strings."""
    return mapping(dig(decoded(_provider_props(args).get(path[0])), *path[1:]))


def _effective(args: ResourceValidationArgs) -> Mapping[str, Any]:
    if args.resource_type.startswith("aws:"):
        return {
            **_provider_mapping(args, "defaultTags", "tags"),
            **mapping(args.props.get("tagsAll")),
            **mapping(args.props.get("tags")),
        }
    if args.resource_type.startswith("gcp:"):
        return {
            **_provider_mapping(args, "defaultLabels"),
            **mapping(dig(args.props, *GCP_LABELS[args.resource_type])),
        }
    return labels_of(args.props)


@resource_rule(
    "meridian-required-tags",
    Severity.MEDIUM,
    ADVISORY,
    types=[*AWS_TAGGED, *GCP_LABELS, NAMESPACE],
    config_schema=REQUIRED_KEYS_SCHEMA,
)
def REQUIRED_TAGS(args: ResourceValidationArgs) -> Iterator[str]:
    """Billable cloud resources and namespaces carry owner, stack and cost-center tags/labels."""
    required = [str(k) for k in args.get_config().get("requiredKeys") or DEFAULT_REQUIRED]
    present = _effective(args)
    missing = [k for k in required if not present.get(k)]
    if missing:
        yield f"missing {'labels' if not args.resource_type.startswith('aws:') else 'tags'}: {', '.join(missing)}"


POLICIES = [REQUIRED_TAGS]
