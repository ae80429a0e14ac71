"""Security groups: nothing is open to the world, except HTTPS (443) on a load balancer's group."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from ..decorators import MANDATORY, stack_rule
from ..props import items, mapping, show
from ..stack import of_types, referenced, refers_to

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
WORLD = ("0.0.0.0/0", "::/0")
HTTPS = 443


def _world_sources(rule: Mapping[str, Any]) -> list[str]:
    cidrs = [*items(rule.get("cidrBlocks")), *items(rule.get("ipv6CidrBlocks"))]
    cidrs += [rule.get("cidrIpv4"), rule.get("cidrIpv6")]
    return [str(c) for c in cidrs if c in WORLD]


def _is_https_only(rule: Mapping[str, Any]) -> bool:
    protocol = str(rule.get("protocol") or rule.get("ipProtocol") or "")
    return rule.get("fromPort") == HTTPS and rule.get("toPort") == HTTPS and protocol in ("tcp", "6")


def _serves_load_balancer(args: StackValidationArgs, group: PolicyResource | None) -> bool:
    if group is None:
        return False
    return any(
        refers_to(ref, group) for lb in of_types(args, *LOAD_BALANCERS) for ref in items(lb.props.get("securityGroups"))
    )


def _ingress(args: StackValidationArgs) -> Iterator[tuple[PolicyResource, PolicyResource | None, Mapping[str, Any]]]:
    """(resource declaring the rule, the group it opens, the rule)."""
    for group in of_types(args, SECURITY_GROUP):
        for rule in items(group.props.get("ingress")):
            yield group, group, mapping(rule)
    for resource in of_types(args, SECURITY_GROUP_RULE, INGRESS_RULE):
        if resource.resource_type == SECURITY_GROUP_RULE and resource.props.get("type") != "ingress":
            continue
        target = resource.props.get("securityGroupId")
        yield resource, referenced(args, target, SECURITY_GROUP), resource.props


@stack_rule("aws-security-group-no-world-ingress", Severity.CRITICAL, MANDATORY)
def NO_WORLD_INGRESS(args: StackValidationArgs) -> Iterator[tuple[str, str | None]]:
    """No security group admits 0.0.0.0/0 or ::/0, except tcp/443 on a load balancer's group."""
    for declared_by, group, rule in _ingress(args):
        world = _world_sources(rule)
        if not world:
            continue
        if _is_https_only(rule) and _serves_load_balancer(args, group):
            continue
        ports = f"{show(rule.get('fromPort'))}-{show(rule.get('toPort'))}"
        yield (
            (
                f"{declared_by.name}: ingress {ports} is open to {', '.join(world)}; only tcp/443 on a "
                "load balancer's security group may be"
            ),
            declared_by.urn,
        )


POLICIES = [NO_WORLD_INGRESS]
