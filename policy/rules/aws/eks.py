"""EKS: a private (or CIDR-restricted) API endpoint, encrypted secrets, control-plane logs."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import ADVISORY, MANDATORY, resource_rule
from ..props import dig, items, world_cidr

CLUSTER = "aws:eks/cluster:Cluster"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")


@resource_rule("aws-eks-endpoint-restricted", Severity.CRITICAL, MANDATORY, types=[CLUSTER])
def ENDPOINT_RESTRICTED(args: ResourceValidationArgs) -> Iterator[str]:
    """EKS API endpoints are private or restricted to named CIDRs, never open to the world."""
    vpc = args.props.get("vpcConfig")
    # EKS defaults: public endpoint on, open to 0.0.0.0/0. Absent settings are those defaults.
    public = dig(vpc, "endpointPublicAccess")
    if public is False:
        return
    cidrs = [str(c) for c in items(dig(vpc, "publicAccessCidrs"))]
    if not cidrs:
        yield "the API endpoint is public and open to 0.0.0.0/0: set endpointPublicAccess=false or publicAccessCidrs"
    for cidr in cidrs:
        if world_cidr(cidr):
            yield f"publicAccessCidrs contains {cidr}, which opens the API endpoint to the world"


@resource_rule("aws-eks-secrets-encrypted", Severity.HIGH, MANDATORY, types=[CLUSTER])
def SECRETS_ENCRYPTED(args: ResourceValidationArgs) -> Iterator[str]:
    """EKS clusters encrypt Kubernetes secrets with a customer-managed KMS key."""
    config = args.props.get("encryptionConfig")
    resources = [str(r) for r in items(dig(config, "resources"))]
    if "secrets" not in resources:
        yield "encryptionConfig must encrypt `secrets` with a KMS key"
    elif not dig(config, "provider", "keyArn"):
        yield "encryptionConfig.provider.keyArn is empty: name the customer-managed KMS key"


@resource_rule("aws-eks-control-plane-logging", Severity.MEDIUM, ADVISORY, types=[CLUSTER])
def CONTROL_PLANE_LOGGING(args: ResourceValidationArgs) -> Iterator[str]:
    """EKS clusters ship api, audit and authenticator control-plane logs."""
    enabled = {str(t) for t in items(args.props.get("enabledClusterLogTypes"))}
    missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
    if missing:
        yield f"enabledClusterLogTypes lacks {', '.join(missing)}"


POLICIES = [ENDPOINT_RESTRICTED, SECRETS_ENCRYPTED, CONTROL_PLANE_LOGGING]
