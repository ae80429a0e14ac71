"""EKS: a private (or CIDR-restricted) API endpoint, encrypted secrets, control-plane logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import ADVISORY, MANDATORY, dig, items, resource_rule

CLUSTER = "aws:eks/cluster:Cluster"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")


def _world_open(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _endpoint_restricted(args: ResourceValidationArgs) -> Iterator[str]:
    vpc = args.props.get("vpcConfig")
    # EKS defaults: public endpoint on, open to 0.0.0.0/0. Absent settings are those defaults.
    public = dig(vpc, "endpointPublicAccess")
    if public is False:
        return
    cidrs = [str(c) for c in items(dig(vpc, "publicAccessCidrs"))]
    if not cidrs:
        yield "the API endpoint is public and open to 0.0.0.0/0: set endpointPublicAccess=false or publicAccessCidrs"
    for cidr in cidrs:
        if _world_open(cidr):
            yield f"publicAccessCidrs contains {cidr}, which opens the API endpoint to the world"


def _secrets_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    config = args.props.get("encryptionConfig")
    resources = [str(r) for r in items(dig(config, "resources"))]
    if "secrets" not in resources:
        yield "encryptionConfig must encrypt `secrets` with a KMS key"
    elif not dig(config, "provider", "keyArn"):
        yield "encryptionConfig.provider.keyArn is empty: name the customer-managed KMS key"


def _control_plane_logging(args: ResourceValidationArgs) -> Iterator[str]:
    enabled = {str(t) for t in items(args.props.get("enabledClusterLogTypes"))}
    missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
    if missing:
        yield f"enabledClusterLogTypes lacks {', '.join(missing)}"


ENDPOINT_RESTRICTED = resource_rule(
    "aws-eks-endpoint-restricted",
    "EKS API endpoints are private or restricted to named CIDRs, never open to the world.",
    severity=Severity.CRITICAL,
    enforcement=MANDATORY,
    types=[CLUSTER],
    check=_endpoint_restricted,
)

SECRETS_ENCRYPTED = resource_rule(
    "aws-eks-secrets-encrypted",
    "EKS clusters encrypt Kubernetes secrets with a customer-managed KMS key.",
    severity=Severity.HIGH,
    enforcement=MANDATORY,
    types=[CLUSTER],
    check=_secrets_encrypted,
)

CONTROL_PLANE_LOGGING = resource_rule(
    "aws-eks-control-plane-logging",
    "EKS clusters ship api, audit and authenticator control-plane logs.",
    severity=Severity.MEDIUM,
    enforcement=ADVISORY,
    types=[CLUSTER],
    check=_control_plane_logging,
)

POLICIES = [ENDPOINT_RESTRICTED, SECRETS_ENCRYPTED, CONTROL_PLANE_LOGGING]
