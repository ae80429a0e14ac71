"""Access entries: every role the stack names in `aws.adminRoleArns` is cluster-admin on every
EKS cluster of the stack, through the access-entry API the clusters are set to; nobody else is
added."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.aws.cluster_admins import admin_entry_suffix
from components.catalog import Cloud
from components.config import ConfigError, namespace_values, parse, stack_file
from meridian.mocks import Inventory
from tests.components.cloud_queries import config_of, named, regions_on

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def test_clusters_authenticate_through_access_entries(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        access = named(inventory, f"{region.name}-eks", "aws:eks/cluster:Cluster").inputs["accessConfig"]
        assert access["authenticationMode"] in ("API", "API_AND_CONFIG_MAP")


def test_every_named_admin_role_is_cluster_admin_on_every_eks_cluster(stack: str, inventory: Inventory) -> None:
    roles = config_of(stack).aws.admin_role_arns
    regions = regions_on(stack, Cloud.AWS)
    people = [e for e in inventory.of_type(ENTRY) if e.inputs["type"] == "STANDARD"]  # not nodes (Karpenter's)
    assert len(people) == len(inventory.of_type(ASSOCIATION)) == len(roles) * len(regions)
    for region in regions:
        cluster = named(inventory, f"{region.name}-eks", "aws:eks/cluster:Cluster").inputs["name"]
        for arn in roles:
            name = f"{region.name}-admins-{admin_entry_suffix(arn)}"
            entry = named(inventory, name, ENTRY)
            assert entry.provider == f"aws-{region.name}"
            assert entry.inputs == {"clusterName": cluster, "principalArn": arn, "type": "STANDARD"}
            association = named(inventory, name, ASSOCIATION).inputs
            assert association == {
                "clusterName": cluster,
                "principalArn": arn,
                "policyArn": ADMIN_POLICY,
                "accessScope": {"type": "cluster"},
            }


@pytest.mark.parametrize("stack_name", ["aws-prod", "multicloud-prod"])
def test_the_production_stacks_name_their_admins(stack_name: str) -> None:
    assert config_of(stack_name).aws.admin_role_arns


def _raw(stack: str) -> dict[str, Any]:
    return namespace_values(yaml.safe_load(stack_file(stack).read_text())["config"])


def test_admin_roles_without_an_aws_region_are_a_config_error() -> None:
    raw = _raw("gcp-eu") | {"aws": {"adminRoleArns": ["arn:aws:iam::123456789012:role/admin"]}}
    with pytest.raises(ConfigError) as caught:
        parse(raw, "stacks/Pulumi.gcp-eu.yaml")
    assert caught.value.problems == [
        ("aws.adminRoleArns", "this stack has no AWS region (no EKS cluster to give access to)")
    ]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/admin",
        "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123",
        "arn:aws-us-gov:iam::123456789012:role/admin",
    ],
)
def test_role_arns_with_or_without_a_path_are_accepted(arn: str) -> None:
    assert parse(_raw("aws-prod") | {"aws": {"adminRoleArns": [arn]}}, "x").aws.admin_role_arns == [arn]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:user/alice",  # users hold long-lived keys: roles only
        "arn:aws:iam::12345:role/admin",
        "arn:aws:sts::123456789012:assumed-role/admin/session",  # a session, not a principal
        "admin",
    ],
)
def test_anything_but_a_role_arn_is_refused_naming_the_entry(arn: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(_raw("aws-prod") | {"aws": {"adminRoleArns": [arn]}}, "x")
    ((path, message),) = caught.value.problems
    assert path == "aws.adminRoleArns[0]" and "is not an IAM role ARN" in message
