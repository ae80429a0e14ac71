"""Required tags and labels."""

from __future__ import annotations

import json

from policy.rules.meridian.tags import REQUIRED_TAGS
from tests.policy.checks import AWS_US, GCP_EU, K8S, assert_complies, assert_violates, provider, resource

TAGS = {"owner": "ml-platform", "stack": "dev", "cost-center": "cc-1042"}


def test_tags_on_the_resource_comply() -> None:
    assert_complies(REQUIRED_TAGS, resource("aws:eks/cluster:Cluster", "c", AWS_US, tags=TAGS))


def test_provider_default_tags_count() -> None:
    # The engine hands provider config over with nested values as JSON strings.
    tagged = provider("aws", "aws-tagged", region="us-east-1", defaultTags=json.dumps({"tags": TAGS}))
    assert_complies(REQUIRED_TAGS, resource("aws:ec2/natGateway:NatGateway", "nat", tagged))


def test_a_missing_cost_center_violates() -> None:
    partial = {k: v for k, v in TAGS.items() if k != "cost-center"}
    assert_violates(
        REQUIRED_TAGS,
        resource("aws:s3/bucket:Bucket", "b", AWS_US, tags=partial),
        containing="missing tags: cost-center",
    )


def test_gcp_labels_and_node_pool_resource_labels_are_read() -> None:
    assert_complies(REQUIRED_TAGS, resource("gcp:storage/bucket:Bucket", "b", GCP_EU, labels=TAGS))
    assert_violates(
        REQUIRED_TAGS,
        resource("gcp:container/nodePool:NodePool", "p", GCP_EU, nodeConfig={}),
        containing="missing labels: owner",
    )


def test_namespaces_need_the_labels() -> None:
    assert_violates(
        REQUIRED_TAGS,
        resource("kubernetes:core/v1:Namespace", "ns", K8S, metadata={"name": "x"}),
        containing="missing labels",
    )
    assert_complies(
        REQUIRED_TAGS, resource("kubernetes:core/v1:Namespace", "ns", K8S, metadata={"name": "x", "labels": TAGS})
    )
