"""The rule decorators: a check's docstring is its rule's description, and a rule must have one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pulumi_policy import ResourceValidationArgs, Severity

from policy.rules.decorators import MANDATORY, resource_rule
from tests.policy.checks import AWS_US, messages, resource

KEY = "aws:kms/key:Key"


def test_the_docstring_is_the_description_and_only_the_named_types_are_checked() -> None:
    @resource_rule("test-keys", Severity.LOW, MANDATORY, types=[KEY])
    def rule(args: ResourceValidationArgs) -> Iterator[str]:
        """Keys are looked at."""
        yield f"looked at {args.name}"

    assert rule.name == "test-keys" and rule.description == "Keys are looked at."
    assert messages(rule, resource(KEY, "key", AWS_US), resource("aws:s3/bucket:Bucket", "bucket", AWS_US)) == [
        "looked at key"
    ]


def test_a_check_without_a_docstring_is_refused() -> None:
    def undocumented(args: ResourceValidationArgs) -> Iterator[str]:
        yield from ()

    with pytest.raises(TypeError, match="docstring"):
        resource_rule("test-undocumented", Severity.LOW, MANDATORY, types=[KEY])(undocumented)
