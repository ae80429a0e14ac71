"""IAM: no wildcard actions on S3 (data buckets and the registry): grants name what they do."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ..decorators import MANDATORY, resource_rule
from ..props import decoded, dig, items, mapping

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_DOCUMENT_TYPES = (
    "aws:iam/policy:Policy",
    ROLE_POLICY,
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)


def statements(document: Any) -> list[Mapping[str, Any]]:
    """IAM statements of a policy given as a JSON string or an object."""
    return [mapping(s) for s in items(dig(decoded(document), "Statement"))]


def touches_s3(resources: list[Any]) -> bool:
    return any(str(r) == "*" or str(r).startswith("arn:aws:s3:::") for r in resources)


def wildcard_s3_actions(statement: Mapping[str, Any]) -> list[str]:
    """Wildcards in an Allow statement's actions that grant S3 calls on S3 (or any) resources."""
    if statement.get("Effect") != "Allow" or not touches_s3(items(statement.get("Resource"))):
        return []
    if "NotAction" in statement:
        return [f"NotAction {list(items(statement.get('NotAction')))}"]
    return [
        str(a)
        for a in items(statement.get("Action"))
        if "*" in str(a) and (str(a) == "*" or str(a).lower().startswith("s3:"))
    ]


def _documents(args: ResourceValidationArgs) -> list[Any]:
    if args.resource_type == ROLE:
        return [mapping(p).get("policy") for p in items(args.props.get("inlinePolicies"))]
    return [args.props.get("policy")]


@resource_rule("aws-iam-no-wildcard-s3-actions", Severity.CRITICAL, MANDATORY, types=[*POLICY_DOCUMENT_TYPES, ROLE])
def NO_WILDCARD_S3_ACTIONS(args: ResourceValidationArgs) -> Iterator[str]:
    """IAM policies grant named S3 actions only: no `*`, `s3:*` or `s3:Get*` on buckets."""
    for document in _documents(args):
        for statement in statements(document):
            wildcards = wildcard_s3_actions(statement)
            if wildcards:
                sid = statement.get("Sid") or "a statement"
                yield f"{sid} allows {', '.join(wildcards)} on S3: list the actions it needs"


POLICIES = [NO_WILDCARD_S3_ACTIONS]
