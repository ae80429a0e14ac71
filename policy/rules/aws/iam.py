"""IAM: no wildcard actions on S3 (data buckets and the registry): grants name what they do."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ..support import MANDATORY, dig, items, mapping, resource_rule

POLICY_DOCUMENT_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ROLE = "aws:iam/role:Role"


def statements(document: Any) -> list[Mapping[str, Any]]:
    """IAM statements of a policy given as a JSON string or an object."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    return [mapping(s) for s in items(dig(document, "Statement"))]


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


def _no_wildcards(args: ResourceValidationArgs) -> Iterator[str]:
    for document in _documents(args):
        for statement in statements(document):
            wildcards = wildcard_s3_actions(statement)
            if wildcards:
                sid = statement.get("Sid") or "a statement"
                yield f"{sid} allows {', '.join(wildcards)} on S3: list the actions it needs"


NO_WILDCARD_S3_ACTIONS = resource_rule(
    "aws-iam-no-wildcard-s3-actions",
    "IAM policies grant named S3 actions only: no `*`, `s3:*` or `s3:Get*` on buckets.",
    severity=Severity.CRITICAL,
    enforcement=MANDATORY,
    types=[*POLICY_DOCUMENT_TYPES, ROLE],
    check=_no_wildcards,
)

POLICIES = [NO_WILDCARD_S3_ACTIONS]
