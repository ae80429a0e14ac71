"""The two rule decorators: a check plus its name, severity and enforcement is a rule of the pack.

A rule is written once, as its check: `@resource_rule(...)` over a function that yields a
message per violation of one resource, `@stack_rule(...)` over one that yields (message, urn)
pairs for the whole stack. The check's docstring is the rule's description, the line that
`python -m meridian policy rules` prints into the README's rules table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str | None]]]
PolicyT = TypeVar("PolicyT", ResourceValidationPolicy, StackValidationPolicy)


def _description(check: Callable[..., Any]) -> str:
    """The check's docstring: a rule without a description is refused when the pack loads."""
    description = inspect.getdoc(check)
    if not description:
        raise TypeError(f"rule check {check.__name__} has no docstring; it is the rule's description")
    return description


def _policy(
    kind: Callable[..., PolicyT],
    check: Callable[..., Any],
    validate: Callable[..., None],
    name: str,
    severity: Severity,
    enforcement: EnforcementLevel,
    config_schema: PolicyConfigSchema | None,
) -> PolicyT:
    return kind(
        name=name,
        description=_description(check),
        validate=validate,
        enforcement_level=enforcement,
        severity=severity,
        config_schema=config_schema,
    )


def resource_rule(
    name: str,
    severity: Severity,
    enforcement: EnforcementLevel,
    *,
    types: Iterable[str],
    config_schema: PolicyConfigSchema | None = None,
) -> Callable[[ResourceCheck], ResourceValidationPolicy]:
    """A rule over single resources of `types`: the check yields one message per violation."""
    wanted = frozenset(types)

    def declare(check: ResourceCheck) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if args.resource_type in wanted:
                for message in check(args):
                    report_violation(message, None)

        return _policy(ResourceValidationPolicy, check, validate, name, severity, enforcement, config_schema)

    return declare


def stack_rule(
    name: str,
    severity: Severity,
    enforcement: EnforcementLevel,
    *,
    config_schema: PolicyConfigSchema | None = None,
) -> Callable[[StackCheck], StackValidationPolicy]:
    """A rule over the whole stack: the check yields (message, urn of the offender or None)."""

    def declare(check: StackCheck) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            for message, urn in check(args):
                report_violation(message, urn)

        return _policy(StackValidationPolicy, check, validate, name, severity, enforcement, config_schema)

    return declare
