"""Run the policy pack offline, the way the Pulumi policy server (the analyzer) would.

pulumi_policy ships no offline runner, so this one mirrors its server (policy.py,
`_PolicyAnalyzerServicer`): props and provider props are read-only Mappings from
`unknown_checking_proxy`, numbers are floats, a rule that touches a value unknown during
preview yields an advisory "can't run during preview" note instead of a verdict, and
`not_applicable` is recorded. What the CLI does before the server sees anything is done here
too: the policy config file format (`all`, per-policy enforcement levels and properties),
schema defaults applied, and the config validated against each rule's schema.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError  # the server catches exactly this
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy


class PolicyConfigError(ValueError):
    """The policy config names an unknown policy or breaks a rule's config schema."""


@dataclass(frozen=True)
class Resource:
    """A resource as the engine describes it to the analyzer."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str
    parent: str | None = None  # the parent's URN
    provider: Resource | None = None


@dataclass(frozen=True)
class Finding:
    policy: str
    severity: str
    enforcement: str  # "mandatory" or "advisory"
    message: str
    urn: str  # the offending resource ("" for the stack as a whole)


@dataclass
class Report:
    violations: list[Finding] = field(default_factory=list)
    unknown: list[Finding] = field(default_factory=list)  # rules that could not run in preview
    not_applicable: list[tuple[str, str, str]] = field(default_factory=list)  # (policy, urn, why)

    @property
    def mandatory(self) -> list[Finding]:
        return [v for v in self.violations if v.enforcement == EnforcementLevel.MANDATORY.value]


def make_urn(stack: str, project: str, types: Sequence[str], name: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types $ ... $ type>::<name>`."""
    return f"urn:pulumi:{stack}::{project}::{'$'.join(types)}::{name}"


def engine_shaped(value: Any) -> Any:
    """Props as the server deserializes them from protobuf Structs: numbers become floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): engine_shaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [engine_shaped(v) for v in value]
    return value


def _level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(f"{where}: enforcement level {value!r} is not one of {allowed}") from None


def resolve_config(
    policies: Sequence[Policy], config: Mapping[str, Any] | None = None
) -> dict[str, tuple[EnforcementLevel, dict[str, Any]]]:
    """Per policy: (enforcement level, its properties with schema defaults), like the CLI.

    `config` has the shape of a `--policy-pack-config` file:
    `{"all": "advisory", "<policy>": "disabled" | {"enforcementLevel": ..., "<prop>": ...}}`.
    """
    config = dict(config or {})
    names = {p.name for p in policies}
    unknown = sorted(set(config) - names - {"all"})
    if unknown:
        raise PolicyConfigError(f"policy config names unknown policies: {', '.join(unknown)}")
    default_level = _level(config["all"], "all") if "all" in config else None
    resolved: dict[str, tuple[EnforcementLevel, dict[str, Any]]] = {}
    for policy in policies:
        given = config.get(policy.name, {})
        if isinstance(given, str):
            given = {"enforcementLevel": given}
        given = dict(given)
        level = policy.enforcement_level or EnforcementLevel.ADVISORY
        if default_level is not None:
            level = default_level
        if "enforcementLevel" in given:
            level = _level(given.pop("enforcementLevel"), policy.name)
        schema = policy.config_schema
        properties = {
            key: spec["default"] for key, spec in (schema.properties if schema else {}).items() if "default" in spec
        } | given
        if schema is None and given:
            raise PolicyConfigError(f"{policy.name} takes no config, got {', '.join(sorted(given))}")
        if schema is not None:
            document = {"type": "object", "properties": schema.properties, "additionalProperties": False}
            if schema.required:
                document["required"] = schema.required
            try:
                jsonschema.validate(properties, document)
            except jsonschema.ValidationError as err:
                path = ".".join(str(p) for p in err.absolute_path)
                raise PolicyConfigError(f"{policy.name}: config {path or '<root>'}: {err.message}") from None
        resolved[policy.name] = (level, properties)
    return resolved


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent)


def _provider(resource: Resource) -> PolicyProviderResource | None:
    provider = resource.provider
    if provider is None:
        return None
    props = unknown_checking_proxy(engine_shaped(dict(provider.props)))
    return PolicyProviderResource(provider.type, props, provider.urn, provider.name)


def _settle(result: Any) -> None:
    if inspect.isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def run_pack(
    policies: Sequence[Policy],
    resources: Iterable[Resource],
    config: Mapping[str, Any] | None = None,
) -> Report:
    """Every resource rule over every resource, then every stack rule over the stack."""
    resources = list(resources)
    resolved = resolve_config(policies, config)
    report = Report()

    def run(policy: Policy, level: EnforcementLevel, call: Any, urn: str) -> None:
        if level is EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY  # the server reports leftover violations so
        severity = policy.severity.value if policy.severity else "unspecified"

        def report_violation(message: str, offender: str | None = None) -> None:
            report.violations.append(Finding(policy.name, severity, level.value, message, offender or urn))

        try:
            _settle(call(report_violation))
        except UnknownValueError as err:
            report.unknown.append(
                Finding(
                    policy.name,
                    severity,
                    EnforcementLevel.ADVISORY.value,
                    f"can't run policy during preview: {err.message}",
                    urn,
                )
            )
        except _NotApplicableError as err:
            report.not_applicable.append((policy.name, urn, err.reason or ""))

    for policy in policies:
        level, properties = resolved[policy.name]
        if level is EnforcementLevel.DISABLED or not isinstance(policy, ResourceValidationPolicy):
            continue
        for resource in resources:
            args = ResourceValidationArgs(
                resource.type,
                unknown_checking_proxy(engine_shaped(dict(resource.props))),
                resource.urn,
                resource.name,
                _options(resource),
                _provider(resource),
                dict(properties),
            )
            run(policy, level, lambda report, check=policy.validate, a=args: check(a, report), resource.urn)

    stack_policies = [p for p in policies if isinstance(p, StackValidationPolicy)]
    if stack_policies:
        for policy in stack_policies:
            level, properties = resolved[policy.name]
            if level is EnforcementLevel.DISABLED:
                continue
            args = StackValidationArgs(_stack_resources(resources), dict(properties))
            run(policy, level, lambda report, check=policy.validate, a=args: check(a, report), "")
    return report


def _stack_resources(resources: list[Resource]) -> list[PolicyResource]:
    """PolicyResources with parents linked, fresh per stack rule as the server builds them."""
    built = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(engine_shaped(dict(r.props))),
            r.urn,
            r.name,
            _options(r),
            _provider(r),
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        if r.parent in built:
            built[r.urn].parent = built[r.parent]
    return list(built.values())
