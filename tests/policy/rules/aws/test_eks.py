"""EKS rules: endpoint restricted, secrets encrypted, control-plane logs."""

from __future__ import annotations

from policy.rules.aws.eks import CONTROL_PLANE_LOGGING, ENDPOINT_RESTRICTED, SECRETS_ENCRYPTED
from tests.policy.checks import AWS_US, assert_complies, assert_violates, resource

CLUSTER = "aws:eks/cluster:Cluster"
KEY = "arn:aws:kms:us-east-1:123456789012:key/abc"


def cluster(**props: object):
    return resource(CLUSTER, "gpu", AWS_US, **props)


def test_a_private_endpoint_complies() -> None:
    assert_complies(ENDPOINT_RESTRICTED, cluster(vpcConfig={"endpointPublicAccess": False}))


def test_a_public_endpoint_restricted_to_named_cidrs_complies() -> None:
    vpc = {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    assert_complies(ENDPOINT_RESTRICTED, cluster(vpcConfig=vpc))


def test_the_eks_default_public_endpoint_violates() -> None:
    assert_violates(ENDPOINT_RESTRICTED, cluster(vpcConfig={}), containing="open to 0.0.0.0/0")


def test_a_world_cidr_violates() -> None:
    vpc = {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}
    assert_violates(ENDPOINT_RESTRICTED, cluster(vpcConfig=vpc), containing="0.0.0.0/0")


def test_secrets_encrypted_with_a_key_comply() -> None:
    config = [{"resources": ["secrets"], "provider": {"keyArn": KEY}}]
    assert_complies(SECRETS_ENCRYPTED, cluster(encryptionConfig=config[0]))


def test_no_encryption_config_violates() -> None:
    assert_violates(SECRETS_ENCRYPTED, cluster(), containing="encrypt `secrets`")


def test_encryption_without_a_key_violates() -> None:
    assert_violates(
        SECRETS_ENCRYPTED, cluster(encryptionConfig={"resources": ["secrets"], "provider": {}}), containing="keyArn"
    )


def test_api_audit_and_authenticator_logs_comply() -> None:
    assert_complies(CONTROL_PLANE_LOGGING, cluster(enabledClusterLogTypes=["api", "audit", "authenticator"]))


def test_missing_audit_logs_violate() -> None:
    assert_violates(CONTROL_PLANE_LOGGING, cluster(enabledClusterLogTypes=["api"]), containing="audit")
