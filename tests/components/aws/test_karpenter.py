"""Karpenter per AWS region, as every shipped stack asks: GPU nodes launched for GPU pods, spot
first with on-demand as the fallback where the stack allows it, within the pool's GPU ceiling;
warned of interruptions through an encrypted queue; allowed to touch only what is tagged for
its own cluster; installed from pinned charts, with its objects valid against the CRDs of the
pinned version."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import jsonschema
import pytest

from components.aws.karpenter import (
    AMI_ALIAS,
    CHART_REPO,
    CONTROLLER,
    DISCOVERY_TAG,
    GPU_POOL,
    INTERRUPTION_EVENTS,
    NAMESPACE,
    VERSION,
)
from components.catalog import GPU_MACHINES, Cloud
from components.cluster_access import ACCELERATOR_LABEL, CAPACITY_LABEL, GPU_TAINT_KEY, POOL_LABEL
from components.config import Region
from meridian.mocks import ACCOUNT, Inventory, Recorded
from tests.components import custom_resources
from tests.components.aws.arns import role_arn
from tests.components.cloud_queries import as_list, named, regions_on, statements
from tests.components.k8s.manifests import manifest

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CRDS = json.loads((custom_resources.SCHEMA_FILES[0]).read_text())


def cluster_name(inventory: Inventory, region: Region) -> str:
    return named(inventory, f"{region.name}-eks", "aws:eks/cluster:Cluster").inputs["name"]


def queue_arn(region: Region, name: str) -> str:
    return f"arn:aws:sqs:{region.name}:{ACCOUNT}:{name}"


def node_pool(inventory: Inventory, region: Region) -> dict:
    recorded = named(inventory, f"{region.name}-karpenter-{GPU_POOL}-pool", NODE_POOL)
    return manifest(recorded.type, recorded.inputs)


def node_class(inventory: Inventory, region: Region) -> dict:
    recorded = named(inventory, f"{region.name}-karpenter-{GPU_POOL}-class", NODE_CLASS)
    return manifest(recorded.type, recorded.inputs)


# -- interruption queue and rules ---------------------------------------------------------------
def test_each_region_has_an_encrypted_interruption_queue_that_refuses_plain_http(
    stack: str, inventory: Inventory
) -> None:
    for region in regions_on(stack, Cloud.AWS):
        queue = named(inventory, f"{region.name}-karpenter-interruptions", QUEUE)
        assert queue.region == region.name
        assert queue.inputs["name"] == cluster_name(inventory, region)  # what the chart's settings name
        assert queue.inputs["sqsManagedSseEnabled"] is True
        assert queue.inputs["messageRetentionSeconds"] == 300
        arn = queue_arn(region, queue.inputs["name"])
        send, deny = statements(named(inventory, f"{region.name}-karpenter-interruptions", QUEUE_POLICY))
        assert send["Effect"] == "Allow" and send["Action"] == "sqs:SendMessage" and send["Resource"] == arn
        assert set(send["Principal"]["Service"]) == {"events.amazonaws.com", "sqs.amazonaws.com"}
        assert deny["Effect"] == "Deny" and deny["Action"] == "sqs:*" and deny["Resource"] == arn
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_four_eventbridge_rules_feed_the_queue(stack: str, inventory: Inventory) -> None:
    assert sorted(detail for _, detail in INTERRUPTION_EVENTS.values()) == [
        "AWS Health Event",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    for region in regions_on(stack, Cloud.AWS):
        arn = queue_arn(region, cluster_name(inventory, region))
        ours = [r for r in inventory.of_type(RULE) if r.name.startswith(f"{region.name}-karpenter-")]
        assert len(ours) == len(INTERRUPTION_EVENTS) == 4
        for suffix, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = named(inventory, f"{region.name}-karpenter-{suffix}", RULE)
            assert json.loads(rule.inputs["eventPattern"]) == {"source": [source], "detail-type": [detail_type]}
            target = named(inventory, f"{region.name}-karpenter-{suffix}", TARGET)
            assert target.inputs["arn"] == arn and target.inputs["rule"] == rule.name
            assert target.region == region.name


# -- IAM ----------------------------------------------------------------------------------------
def _controller_policy(inventory: Inventory, region: Region) -> list[dict]:
    return statements(named(inventory, f"{region.name}-karpenter-controller", ROLE_POLICY))


def test_the_controller_role_trusts_only_karpenters_service_account(stack: str, inventory: Inventory) -> None:
    assert CONTROLLER.subject == "system:serviceaccount:kube-system:karpenter"
    for region in regions_on(stack, Cloud.AWS):
        role = named(inventory, f"{region.name}-karpenter-controller", ROLE)
        (trust,) = statements(role, "assumeRolePolicy")
        host = (
            named(inventory, f"{region.name}-eks-oidc", "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
            .inputs["url"]
            .removeprefix("https://")
        )
        assert trust["Condition"]["StringEquals"][f"{host}:sub"] == [CONTROLLER.subject]
        assert [a for a in inventory.of_type(ATTACHMENT) if a.parent == role.name] == []  # inline only
        release = named(inventory, f"{region.name}-karpenter-controller", RELEASE)
        assert release.inputs["values"]["serviceAccount"]["annotations"] == {
            "eks.amazonaws.com/role-arn": role_arn(role)
        }


# Actions that create, change or delete something, each only under a condition on this cluster's
# tags, or on resources that are only read at launch (AMIs, snapshots, subnets, security groups).
LAUNCH_INPUTS = ("image/*", "snapshot/*", "security-group/*", "subnet/*", "capacity-reservation/*", "placement-group/*")
EC2_WRITES = {
    "ec2:RunInstances",
    "ec2:CreateFleet",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateTags",
    "ec2:TerminateInstances",
    "ec2:DeleteLaunchTemplate",
}


def test_the_controller_may_change_only_what_is_tagged_for_its_cluster(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        cluster = cluster_name(inventory, region)
        node_role = named(inventory, f"{region.name}-karpenter-nodes", ROLE)
        policy = _controller_policy(inventory, region)
        assert all(s["Effect"] == "Allow" for s in policy)
        actions = {a for s in policy for a in as_list(s["Action"])}
        assert not any("*" in a for a in actions)
        assert {a for a in actions if a.startswith("iam:")} == {
            "iam:PassRole",
            "iam:GetInstanceProfile",
            "iam:ListInstanceProfiles",
        }  # no instance-profile writes: the EC2NodeClass names our own profile
        for statement in policy:
            resources = as_list(statement["Resource"])
            writes = EC2_WRITES & set(as_list(statement["Action"]))
            if writes:
                assert all(f":ec2:{region.name}:" in r for r in resources)
                tagged = json.dumps(statement.get("Condition", {}))
                launch_inputs_only = all(r.endswith(LAUNCH_INPUTS) for r in resources)
                assert launch_inputs_only or (
                    f"kubernetes.io/cluster/{cluster}" in tagged and "karpenter.sh/nodepool" in tagged
                ), statement["Sid"]
                if launch_inputs_only:
                    assert writes <= {"ec2:RunInstances", "ec2:CreateFleet"}
            if "iam:PassRole" in as_list(statement["Action"]):
                assert resources == [role_arn(node_role)]
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
            if any(a.startswith("sqs:") for a in as_list(statement["Action"])):
                assert resources == [queue_arn(region, cluster)]
            if resources == ["*"]:
                reads = {"iam:ListInstanceProfiles", "pricing:GetProducts"}
                assert set(as_list(statement["Action"])) <= reads or (
                    all(a.startswith("ec2:Describe") for a in as_list(statement["Action"]))
                    and statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": region.name}}
                ), statement["Sid"]
        (describe,) = [s for s in policy if s["Action"] == "eks:DescribeCluster"]
        assert describe["Resource"] == f"arn:aws:eks:{region.name}:{ACCOUNT}:cluster/{cluster}"


def test_nodes_have_their_own_role_profile_and_access_entry(stack: str, inventory: Inventory) -> None:
    for region in regions_on(stack, Cloud.AWS):
        role = named(inventory, f"{region.name}-karpenter-nodes", ROLE)
        (trust,) = statements(role, "assumeRolePolicy")
        assert trust["Principal"] == {"Service": "ec2.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        attached = sorted(a.inputs["policyArn"] for a in inventory.of_type(ATTACHMENT) if a.inputs["role"] == role.name)
        assert attached == [
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        ]
        profile = named(inventory, f"{region.name}-karpenter-nodes", "aws:iam/instanceProfile:InstanceProfile")
        assert profile.inputs["role"] == role.name
        assert node_class(inventory, region)["spec"]["instanceProfile"] == profile.name
        entry = named(inventory, f"{region.name}-karpenter-nodes", "aws:eks/accessEntry:AccessEntry").inputs
        assert entry == {
            "clusterName": cluster_name(inventory, region),
            "principalArn": role_arn(role),
            "type": "EC2_LINUX",
        }


# -- charts -------------------------------------------------------------------------------------
def test_both_charts_are_pinned_and_the_crds_come_first(stack: str, inventory: Inventory) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert CHART_REPO == "oci://public.ecr.aws/karpenter"
    assert f"v{VERSION}" in CRDS["source"]  # the schemas the objects are checked against
    for region in regions_on(stack, Cloud.AWS):
        crds = named(inventory, f"{region.name}-karpenter-crd", RELEASE)
        controller = named(inventory, f"{region.name}-karpenter-controller", RELEASE)
        for release, chart in ((crds, "karpenter-crd"), (controller, "karpenter")):
            assert release.inputs["chart"] == f"{CHART_REPO}/{chart}" and release.inputs["version"] == VERSION
            assert release.inputs["namespace"] == NAMESPACE and release.provider == f"{region.name}-eks-k8s"
        assert controller.inputs["skipCrds"] is True
        assert crds.name in controller.dependencies
        assert f"{region.name}-eks-system" in controller.dependencies  # it runs there, not on its own nodes
        assert controller.inputs["values"]["nodeSelector"] == {POOL_LABEL: "system"}
        assert controller.inputs["values"]["settings"] == {
            "clusterName": cluster_name(inventory, region),
            "interruptionQueue": cluster_name(inventory, region),
        }
        for kind, suffix in ((NODE_POOL, "pool"), (NODE_CLASS, "class")):
            assert (
                controller.name in named(inventory, f"{region.name}-karpenter-{GPU_POOL}-{suffix}", kind).dependencies
            )


# -- NodePool and EC2NodeClass ------------------------------------------------------------------
def test_node_pools_and_classes_are_valid_against_the_pinned_crds(stack: str, inventory: Inventory) -> None:
    regions = regions_on(stack, Cloud.AWS)
    assert len(inventory.of_type(NODE_POOL)) == len(inventory.of_type(NODE_CLASS)) == len(regions)
    for region in regions:
        pool, node_class_ = node_pool(inventory, region), node_class(inventory, region)
        for obj in (pool, node_class_):
            custom_resources.validate(obj)
            assert {"owner", "stack", "cost-center"} <= set(obj["metadata"]["labels"])
        # The CRDs' CEL rules that apply to what we set (not in the JSON facts: jsonschema cannot run CEL).
        template = pool["spec"]["template"]
        for label in template["metadata"]["labels"]:
            assert label.split("/")[0] not in ("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io"), label
        assert all(r["values"] for r in template["spec"]["requirements"] if r["operator"] == "In")
        spec = node_class_["spec"]
        assert ("role" in spec) != ("instanceProfile" in spec)  # exactly one of them
        assert not any(k.startswith(("kubernetes.io/cluster", "karpenter.", "eks:")) for k in spec["tags"])


def test_the_schema_check_rejects_a_misspelled_field(inventory_of: Callable[[str], Inventory]) -> None:
    (region, *_) = regions_on("aws-prod", Cloud.AWS)
    pool = node_pool(inventory_of("aws-prod"), region)
    pool["spec"]["template"]["spec"]["taint"] = pool["spec"]["template"]["spec"].pop("taints")
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(pool)


def test_each_gpu_pool_has_its_instance_type_capacity_taint_labels_and_gpu_ceiling(
    stack: str, inventory: Inventory
) -> None:
    for region in regions_on(stack, Cloud.AWS):
        gpu = region.gpu
        template = node_pool(inventory, region)["spec"]["template"]
        requirements = {r["key"]: r for r in template["spec"]["requirements"]}
        assert requirements["node.kubernetes.io/instance-type"]["values"] == [gpu.machine_type]
        capacity = requirements["karpenter.sh/capacity-type"]["values"]
        # spot before on-demand is Karpenter's own order when both are allowed (concepts/nodepools.md)
        assert capacity == (
            ["spot", "on-demand"] if gpu.on_demand_fallback else ["spot"] if gpu.spot else ["on-demand"]
        )
        assert template["spec"]["taints"] == [{"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}]
        labels = template["metadata"]["labels"]
        assert labels[POOL_LABEL] == "gpu" and labels[ACCELERATOR_LABEL] == gpu.accelerator.value
        # a mixed pool's nodes carry karpenter.sh/capacity-type instead
        assert labels.get(CAPACITY_LABEL) == (capacity[0] if len(capacity) == 1 else None)
        gpus_per_node = GPU_MACHINES[Cloud.AWS][gpu.machine_type or ""].gpus
        assert node_pool(inventory, region)["spec"]["limits"] == {"nvidia.com/gpu": gpu.max * gpus_per_node}
        assert template["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": GPU_POOL,
        }


def test_nodes_launch_from_a_pinned_accelerated_ami_into_the_private_subnets(stack: str, inventory: Inventory) -> None:
    family, version = AMI_ALIAS.split("@")
    assert family == "al2023" and version != "latest" and re.fullmatch(r"v\d{8}", version)
    for region in regions_on(stack, Cloud.AWS):
        cluster = cluster_name(inventory, region)
        spec = node_class(inventory, region)["spec"]
        assert spec["amiSelectorTerms"] == [{"alias": AMI_ALIAS}]
        assert spec["subnetSelectorTerms"] == [{"tags": {DISCOVERY_TAG: cluster}}]
        eks = named(inventory, f"{region.name}-eks", "aws:eks/cluster:Cluster")
        assert spec["securityGroupSelectorTerms"] == [{"id": eks.outputs["vpcConfig"]["clusterSecurityGroupId"]}]
        (root,) = spec["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] is True
        subnets: list[Recorded] = [
            s for s in inventory.of_type("aws:ec2/subnet:Subnet") if s.name.startswith(f"{region.name}-network-")
        ]
        tagged = sorted(s.name for s in subnets if s.inputs["tags"].get(DISCOVERY_TAG) == cluster)
        assert tagged == [f"{region.name}-network-private-0", f"{region.name}-network-private-1"]


def test_eks_has_no_gpu_node_groups_left(inventory: Inventory) -> None:
    """Karpenter's NodePool is the only GPU capacity on EKS; the managed groups keep their sizes."""
    for group in inventory.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.inputs["labels"][POOL_LABEL] in ("system", "edge"), group.name
        assert group.inputs["capacityType"] == "ON_DEMAND" and group.ignore_changes == []
