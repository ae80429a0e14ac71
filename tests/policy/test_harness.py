"""The offline harness behaves like the policy server: read-only Mappings, floats, unknowns
during preview, schema defaults, config validation and enforcement levels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.harness import PolicyConfigError, resolve_config, run_pack
from policy.rules import POLICIES
from policy.rules.aws.eks import ENDPOINT_RESTRICTED
from tests.policy.checks import AWS_US, resource

seen: list[Any] = []


def _spy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    seen.append((args.props, args.get_config(), args.provider))


SPY = ResourceValidationPolicy(
    "spy",
    "records what a rule is handed",
    validate=_spy,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={"limit": {"type": "integer", "default": 7}, "name": {"type": "string"}}
    ),
)


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()


def test_the_pack_has_at_least_25_uniquely_named_rules_each_with_severity_and_enforcement() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) >= 25 and len(set(names)) == len(names)
    assert all(p.severity is not None and p.enforcement_level is not None for p in POLICIES)


def test_props_are_read_only_mappings_with_float_numbers_not_dicts() -> None:
    run_pack([SPY], [resource("aws:eks/cluster:Cluster", "c", AWS_US, version="1.33", count=3, nested={"n": [1]})])
    props, _, provider = seen[0]
    assert isinstance(props, Mapping) and not isinstance(props, dict)
    assert props["count"] == 3.0 and isinstance(props["count"], float)
    assert isinstance(props["nested"]["n"][0], float)
    assert provider.props["region"] == "us-east-1" and provider.name == "aws-us-east-1"


def test_schema_defaults_are_applied_and_given_values_win() -> None:
    run_pack([SPY], [resource("x:y:Z")], {"spy": {"name": "n"}})
    assert dict(seen[0][1]) == {"limit": 7, "name": "n"}


def test_config_that_breaks_the_schema_is_rejected_with_the_field() -> None:
    with pytest.raises(PolicyConfigError, match="spy: config limit: 'many' is not of type 'integer'"):
        run_pack([SPY], [], {"spy": {"limit": "many"}})


def test_config_for_an_unknown_policy_is_rejected() -> None:
    with pytest.raises(PolicyConfigError, match="unknown policies: nope"):
        resolve_config([SPY], {"nope": "mandatory"})


def test_a_value_unknown_during_preview_gives_an_advisory_note_not_a_verdict() -> None:
    cluster = resource("aws:eks/cluster:Cluster", "c", AWS_US, vpcConfig=UNKNOWN_STRING_VALUE)
    report = run_pack([ENDPOINT_RESTRICTED], [cluster])
    assert report.violations == []
    assert [(u.policy, u.enforcement) for u in report.unknown] == [("aws-eks-endpoint-restricted", "advisory")]
    assert "can't be known during preview" in report.unknown[0].message


def test_enforcement_levels_follow_the_config_file() -> None:
    public = resource("aws:eks/cluster:Cluster", "c", AWS_US, vpcConfig={})
    assert run_pack([ENDPOINT_RESTRICTED], [public]).mandatory
    assert not run_pack([ENDPOINT_RESTRICTED], [public], {"all": "advisory"}).mandatory
    assert not run_pack([ENDPOINT_RESTRICTED], [public], {"aws-eks-endpoint-restricted": "disabled"}).violations
    with pytest.raises(PolicyConfigError, match="enforcement level 'strict'"):
        run_pack([ENDPOINT_RESTRICTED], [public], {"all": "strict"})


def test_stack_rules_see_every_resource_with_its_parent_linked() -> None:
    parents: list[Any] = []

    def look(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        parents.extend((r.name, r.parent.name if r.parent else None) for r in args.resources)
        report_violation("stack-wide", None)

    component = resource("meridian:aws:Region", "us")
    child = resource("aws:kms/key:Key", "k", AWS_US)
    child = type(child)(child.type, child.name, child.props, child.urn, parent=component.urn, provider=AWS_US)
    report = run_pack(
        [StackValidationPolicy("look", "d", validate=look, enforcement_level=EnforcementLevel.MANDATORY)],
        [component, child],
    )
    assert parents == [("us", None), ("k", "us")]
    assert [(v.message, v.urn) for v in report.violations] == [("stack-wide", "")]
