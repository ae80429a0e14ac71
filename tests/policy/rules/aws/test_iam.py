"""IAM: no wildcard actions on S3."""

from __future__ import annotations

import json

from policy.rules.aws.iam import NO_WILDCARD_S3_ACTIONS
from tests.policy.checks import AWS_US, assert_complies, assert_violates, resource


def role_policy(*statements: dict[str, object]):
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return resource("aws:iam/rolePolicy:RolePolicy", "trainer", AWS_US, role="trainer", policy=document)


def test_named_read_actions_on_one_bucket_comply() -> None:
    read = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data-us/*"}
    assert_complies(NO_WILDCARD_S3_ACTIONS, role_policy(read))


def test_s3_star_on_a_bucket_violates() -> None:
    star = {"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data-us/*"}
    assert_violates(NO_WILDCARD_S3_ACTIONS, role_policy(star), containing="s3:*")


def test_get_star_on_any_resource_violates() -> None:
    star = {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "*"}
    assert_violates(NO_WILDCARD_S3_ACTIONS, role_policy(star), containing="s3:Get*")


def test_an_inline_role_policy_with_star_violates() -> None:
    document = json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    role = resource("aws:iam/role:Role", "r", AWS_US, inlinePolicies=[{"name": "all", "policy": document}])
    assert_violates(NO_WILDCARD_S3_ACTIONS, role, containing="allows *")


def test_wildcards_outside_s3_are_not_this_rules_business() -> None:
    kms = {"Effect": "Allow", "Action": "kms:Decrypt*", "Resource": "arn:aws:kms:us-east-1:1:key/k"}
    assert_complies(NO_WILDCARD_S3_ACTIONS, role_policy(kms))
