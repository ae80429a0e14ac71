"""Security groups: nothing open to the world but 443 on a load balancer's group."""

from __future__ import annotations

from policy.rules.aws.ec2 import NO_WORLD_INGRESS
from tests.policy.checks import AWS_US, assert_complies, assert_violates, resource

SG = "aws:ec2/securityGroup:SecurityGroup"
HTTPS_FROM_WORLD = {"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}


def test_https_from_the_world_on_a_load_balancer_group_complies() -> None:
    group = resource(SG, "lb-sg", AWS_US, ingress=[HTTPS_FROM_WORLD])
    lb = resource("aws:lb/loadBalancer:LoadBalancer", "lb", AWS_US, securityGroups=["lb-sg"])
    assert_complies(NO_WORLD_INGRESS, group, lb)


def test_https_from_the_world_on_a_node_group_violates() -> None:
    group = resource(SG, "nodes", AWS_US, ingress=[HTTPS_FROM_WORLD])
    assert_violates(NO_WORLD_INGRESS, group, containing="only tcp/443 on a load balancer")


def test_ssh_from_the_world_on_a_load_balancer_group_violates() -> None:
    ssh = {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}
    group = resource(SG, "lb-sg", AWS_US, ingress=[ssh])
    lb = resource("aws:lb/loadBalancer:LoadBalancer", "lb", AWS_US, securityGroups=["lb-sg"])
    assert_violates(NO_WORLD_INGRESS, group, lb, containing="22-22")


def test_a_standalone_ipv6_world_rule_violates() -> None:
    rule = resource(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "r",
        AWS_US,
        securityGroupId="nodes",
        cidrIpv6="::/0",
        fromPort=8080,
        toPort=8080,
        ipProtocol="tcp",
    )
    assert_violates(NO_WORLD_INGRESS, resource(SG, "nodes", AWS_US), rule, containing="::/0")


def test_ingress_from_the_vpc_complies() -> None:
    group = resource(
        SG, "nodes", AWS_US, ingress=[{"fromPort": 0, "toPort": 65535, "protocol": "-1", "cidrBlocks": ["10.0.0.0/16"]}]
    )
    assert_complies(NO_WORLD_INGRESS, group)
